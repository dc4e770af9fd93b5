"""GET /v2/images query parsing (glance-v2-api.md 2.2): every filter, every 400, and links."""
from __future__ import annotations

import pytest
from domain_support import make_record

from cas_glance.domain.filters import split_in_values
from cas_glance.domain.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    first_link,
    next_link,
    parse_list_query,
)
from cas_glance.errors import BadRequest


def q(*pairs):
    return parse_list_query(list(pairs))


def matches(query, record):
    return all(p(record) for p in query.predicates)


def test_defaults():
    query = q()
    assert query.limit == DEFAULT_LIMIT == 25 and query.marker is None
    assert query.sort == (("created_at", "desc"), ("id", "desc"))
    assert query.visibility is None and query.member_status == "accepted"
    assert query.os_hidden is False


@pytest.mark.parametrize("raw,limit", [("0", 0), ("1", 1), ("200", 200), ("1000", 1000),
                                       ("1001", MAX_LIMIT), ("99999999", MAX_LIMIT)])
def test_limit_is_capped_silently(raw, limit):
    assert q(("limit", raw)).limit == limit


@pytest.mark.parametrize("raw", ["-1", "abc", "", "1.5", "0x10"])
def test_bad_limit_is_bad_request(raw):
    with pytest.raises(BadRequest):
        q(("limit", raw))


def test_marker_is_kept():
    assert q(("marker", "abc")).marker == "abc"


def test_classic_sort_keys_and_dirs():
    assert q(("sort_key", "name"), ("sort_dir", "asc")).sort == (
        ("name", "asc"), ("created_at", "asc"), ("id", "asc"))
    assert q(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc"),
             ("sort_dir", "desc")).sort == (("name", "asc"), ("size", "desc"),
                                            ("created_at", "desc"), ("id", "desc"))


def test_one_sort_dir_applies_to_every_key():
    assert q(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")).sort == (
        ("name", "asc"), ("size", "asc"), ("created_at", "asc"), ("id", "asc"))


def test_sort_dir_alone_orders_created_at():
    assert q(("sort_dir", "asc")).sort == (("created_at", "asc"), ("id", "asc"))


def test_new_sort_syntax_defaults_to_desc():
    assert q(("sort", "name:asc,size")).sort == (
        ("name", "asc"), ("size", "desc"), ("created_at", "desc"), ("id", "desc"))


def test_explicit_tiebreaker_is_not_duplicated():
    assert q(("sort", "id:asc")).sort == (("id", "asc"), ("created_at", "desc"))


@pytest.mark.parametrize("pairs", [
    [("sort", "name"), ("sort_key", "size")],
    [("sort", "name"), ("sort_dir", "asc")],
    [("sort_key", "bogus")], [("sort_key", "min_ram")], [("sort_dir", "up")],
    [("sort", "name:sideways")], [("sort", "owner:asc")],
    [("sort_key", "name"), ("sort_key", "size"), ("sort_key", "id"),
     ("sort_dir", "asc"), ("sort_dir", "desc")],
])
def test_bad_sorting_is_bad_request(pairs):
    with pytest.raises(BadRequest):
        parse_list_query(pairs)


@pytest.mark.parametrize("key", ["name", "id", "status", "container_format", "disk_format"])
def test_exact_and_in_filters(key):
    value = "active" if key == "status" else "bare" if key == "container_format" else "v1"
    other = "queued" if key == "status" else "ovf" if key == "container_format" else "v2"
    rec = make_record()
    rec[key] = value
    assert matches(q((key, value)), rec)
    assert not matches(q((key, other)), rec)
    assert matches(q((key, f"in:{other},{value}")), rec)
    assert not matches(q((key, f"in:{other}")), rec)


def test_in_filter_with_quoted_commas():
    rec = make_record({"name": "a,b"})
    assert matches(q(("name", 'in:"a,b",c')), rec)
    assert not matches(q(("name", "in:a,b")), rec)


@pytest.mark.parametrize("raw,values", [
    ("a,b", ["a", "b"]), ('"a,b",c', ["a,b", "c"]), ('"x\\"y"', ['x"y']), ("a", ["a"]),
    ("", [""]), ('a,"b"', ["a", "b"]),
])
def test_split_in_values(raw, values):
    assert split_in_values(raw) == values


@pytest.mark.parametrize("raw", ['"a', 'a"b', '"a"b', '"a,b'])
def test_unbalanced_quotes_are_bad_request(raw):
    with pytest.raises(BadRequest):
        split_in_values(raw)


def test_invalid_status_filter_is_bad_request():
    with pytest.raises(BadRequest):
        q(("status", "sleeping"))
    with pytest.raises(BadRequest):
        q(("status", "in:active,sleeping"))


@pytest.mark.parametrize("value", ["public", "private", "shared", "community", "all"])
def test_visibility_values(value):
    assert q(("visibility", value)).visibility == value


@pytest.mark.parametrize("key,value", [("visibility", "everyone"), ("visibility", "PUBLIC"),
                                       ("member_status", "maybe")])
def test_bad_visibility_or_member_status_is_bad_request(key, value):
    with pytest.raises(BadRequest):
        q((key, value))


@pytest.mark.parametrize("value", ["accepted", "pending", "rejected", "all"])
def test_member_status_values(value):
    assert q(("member_status", value)).member_status == value


@pytest.mark.parametrize("key", ["owner", "checksum", "os_hash_value"])
def test_exact_base_filters(key):
    rec = make_record()
    rec[key] = "abc"
    assert matches(q((key, "abc")), rec) and not matches(q((key, "abd")), rec)


@pytest.mark.parametrize("raw,expected", [("true", True), ("True", True), ("TRUE", True),
                                          ("false", False), ("False", False)])
def test_os_hidden_is_case_insensitive(raw, expected):
    assert q(("os_hidden", raw)).os_hidden is expected


@pytest.mark.parametrize("raw", ["true", "False"])
def test_protected_filter(raw):
    rec = make_record({"protected": True})
    assert matches(q(("protected", raw)), rec) is (raw.lower() == "true")


@pytest.mark.parametrize("key", ["protected", "os_hidden"])
@pytest.mark.parametrize("raw", ["yes", "1", ""])
def test_bad_booleans_are_bad_request(key, raw):
    with pytest.raises(BadRequest):
        q((key, raw))


def test_size_range_filters_skip_images_without_size():
    rec = make_record(size=100)
    assert matches(q(("size_min", "100"), ("size_max", "100")), rec)
    assert not matches(q(("size_min", "101")), rec)
    assert not matches(q(("size_max", "99")), rec)
    assert not matches(q(("size_min", "0")), make_record())


@pytest.mark.parametrize("key", ["size_min", "size_max"])
@pytest.mark.parametrize("raw", ["x", "-1", "1.0", ""])
def test_bad_size_bounds_are_bad_request(key, raw):
    with pytest.raises(BadRequest):
        q((key, raw))


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
@pytest.mark.parametrize("expr,hit", [
    ("gt:2026-01-02T03:04:04Z", True), ("gt:2026-01-02T03:04:05Z", False),
    ("gte:2026-01-02T03:04:05Z", True), ("eq:2026-01-02T03:04:05Z", True),
    ("eq:2026-01-02T03:04:05.5Z", False), ("neq:2026-01-02T03:04:05Z", False),
    ("lt:2026-01-02T03:04:05.000001Z", True), ("lt:2026-01-02T03:04:05Z", False),
    ("lte:2026-01-02T03:04:05Z", True), ("gt:2026-01-02T03:04:04.999999Z", True),
    ("gte:2026-01-02T03:04:05.1Z", False), ("2026-01-02T03:04:05Z", True),
    ("eq:2026-01-02T05:04:05+02:00", True), ("lt:2026-01-02T04:04:05+02:00", False),
    ("gt:2026-01-02", True), ("eq:2026-01-02T03:04:05", True),
])
def test_time_filters(field, expr, hit):
    rec = make_record(created_at="2026-01-02T03:04:05Z", updated_at="2026-01-02T03:04:05Z")
    assert matches(q((field, expr)), rec) is hit


@pytest.mark.parametrize("expr", ["after:2026-01-01T00:00:00Z", "gt:yesterday", "gt:",
                                  "2026-13-01T00:00:00Z", "soon"])
def test_bad_time_filters_are_bad_request(expr):
    with pytest.raises(BadRequest):
        q(("created_at", expr))


def test_repeated_tags_must_all_match():
    rec = make_record({"tags": ["a", "b", "c"]})
    assert matches(q(("tag", "a"), ("tag", "c")), rec)
    assert not matches(q(("tag", "a"), ("tag", "z")), rec)


def test_changes_since_is_bad_request():
    with pytest.raises(BadRequest):
        q(("changes-since", "2026-01-01T00:00:00Z"))


def test_unknown_key_matches_extra_property_exactly():
    rec = make_record({"os_distro": "ubuntu", "owner_specified.openstack.object": "images/x"})
    assert matches(q(("os_distro", "ubuntu")), rec)
    assert not matches(q(("os_distro", "Ubuntu")), rec)
    assert matches(q(("owner_specified.openstack.object", "images/x")), rec)
    assert not matches(q(("hypervisor_type", "kvm")), rec)


def test_other_base_keys_match_by_text():
    rec = make_record({"min_disk": 3})
    assert matches(q(("min_disk", "3")), rec) and not matches(q(("min_disk", "4")), rec)


def test_links_keep_repeated_parameters_and_drop_old_marker():
    params = [("limit", "2"), ("tag", "a"), ("tag", "b"), ("marker", "old"),
              ("sort", "name:asc")]
    assert first_link(params) == "/v2/images?limit=2&tag=a&tag=b&sort=name:asc"
    assert next_link(params, "new") == "/v2/images?limit=2&tag=a&tag=b&sort=name:asc&marker=new"


def test_links_without_parameters():
    assert first_link([]) == "/v2/images"
    assert next_link([("marker", "x")], "m") == "/v2/images?marker=m"


def test_links_escape_what_needs_escaping():
    assert first_link([("name", "a b&c")]) == "/v2/images?name=a+b%26c"
