"""The pure domain layer of cas-glance: Glance v2 rules over plain dict records, no I/O.

Modules: ``context`` (RequestContext), ``status`` (the transition table), ``schemas`` (the
served JSON schemas and the validator), ``keys`` (key vocabulary), ``image`` (create, API view,
tags; re-exports ``access`` and ``lifecycle``), ``patch`` (JSON-patch), ``query`` and
``filters`` and ``sorting`` (list parsing, selection, paging links), ``formats`` (disk image
header probing: detection, virtual size, declared-format check), ``members`` (sharing),
``types`` (``Record = dict[str, Any]``, ``Predicate``).

Interface notes beyond the brief (all additive; no signature was changed):
* ``image.finish_upload`` takes an optional ``virtual_size=`` keyword (default: ``size`` for
  a bare raw/iso image, else None).
* ``image.is_visible`` is False for ``pending_delete``/``deleted`` records (the API's 404).
* ``image.ensure_can_modify(record, ctx)``: owner-or-admin check (403); ``apply_patch`` and
  ``mark_deleted`` call it themselves; the API should call it before upload, stage and tags.
* ``members`` (new): ``add_member``, ``update_member``, ``remove_member``, ``get_member``,
  ``list_members``, ``member_view``; records keep ``members: {project: status}`` (as the brief
  says) plus internal ``member_stamps: {project: [created_at, updated_at]}``.
* ``formats`` (new): ``check_format(disk_format, container_format, head)`` (415 on mismatch)
  and ``virtual_size(disk_format, head, size)`` for ``finish_upload(virtual_size=...)``.
* ``lifecycle`` also has ``stage``, ``revert_stage``, ``begin_import``, ``finish_import``,
  ``fail_import``, ``scrub`` and ``restore``.
"""
