"""Shared builders for the domain tests: contexts, timestamps and image records.

(A uniquely named module, not conftest, so "from domain_support import" is unambiguous.)
"""
from __future__ import annotations

import uuid
from typing import Any

from cas_glance.domain.context import RequestContext
from cas_glance.domain.image import new_image

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T03:04:06Z"
ADMIN = RequestContext.admin()
ALICE = RequestContext(project_id="alice", user_id="u-alice", roles=("member",), is_admin=False)
BOB = RequestContext(project_id="bob", user_id="u-bob", roles=("member",), is_admin=False)
NOBODY = RequestContext(project_id=None, user_id=None, roles=(), is_admin=False)


def make_record(body: dict | None = None, ctx: RequestContext = ADMIN, now: str = NOW,
                **fields: Any) -> dict:
    """A record via new_image, then raw field overrides (status, size, members, ...)."""
    record = new_image(dict(body or {}), ctx, now, str(uuid.uuid4()))
    record.update(fields)
    return record


def records(n: int, **fields: Any) -> list[dict]:
    """``n`` records one second apart in created_at order."""
    out = []
    for i in range(n):
        stamp = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        out.append(make_record(created_at=stamp, updated_at=stamp, **fields))
    return out
