"""Route templating: identifiers in paths become placeholders; user rules take precedence."""

from __future__ import annotations

from contextlib import closing

import polars as pl
import pytest

from conflictlens.ingest import IngestOptions, RouteRule, import_source
from conflictlens.ingest.routes import apply_routes
from conflictlens.store import Writer, connect
from tests.helpers import clf_line, query, write_lines


def template(
    paths: list[str | None], rules: tuple[RouteRule, ...] = ()
) -> list[tuple[str | None, list[str]]]:
    frame = apply_routes(
        pl.DataFrame({"path": paths}, schema={"path": pl.String}), rules, with_ids=True
    )
    return list(zip(frame["route"].to_list(), frame["resource_ids"].to_list(), strict=True))


def one(path: str, rules: tuple[RouteRule, ...] = ()) -> tuple[str | None, list[str]]:
    return template([path], rules)[0]


@pytest.mark.parametrize(
    ("path", "route", "ids"),
    [
        ("/api/v1/users/123", "/api/v1/users/{id}", ["123"]),
        ("/api/v1/users/0", "/api/v1/users/{id}", ["0"]),
        (
            "/api/v1/orders/9f1c2d4e-1b2c-4d5e-8f90-123456789abc/cancel",
            "/api/v1/orders/{uuid}/cancel",
            ["9f1c2d4e-1b2c-4d5e-8f90-123456789abc"],
        ),
        (
            "/api/v1/orders/9F1C2D4E-1B2C-4D5E-8F90-123456789ABC",
            "/api/v1/orders/{uuid}",
            ["9F1C2D4E-1B2C-4D5E-8F90-123456789ABC"],
        ),
        (
            "/api/v2/documents/5d41402abc4b2a76b9719d911017c592",
            "/api/v2/documents/{hex}",
            ["5d41402abc4b2a76b9719d911017c592"],
        ),
        (
            "/blobs/da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "/blobs/{hex}",
            ["da39a3ee5e6b4b0d3255bfef95601890afd80709"],
        ),
        ("/api/v1/users/0x1f2e3d4c5b", "/api/v1/users/{hex}", ["0x1f2e3d4c5b"]),
        (
            "/api/v1/locks/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "/api/v1/locks/{ulid}",
            ["01ARZ3NDEKTSV4RRFFQ69G5FAV"],
        ),
        (
            "/api/v1/accounts/jane.doe@example.com/settings",
            "/api/v1/accounts/{email}/settings",
            ["jane.doe@example.com"],
        ),
        (
            "/api/v1/accounts/jane%40example.com/settings",
            "/api/v1/accounts/{email}/settings",
            ["jane%40example.com"],
        ),
        ("/api/v1/reports/2026-11-20", "/api/v1/reports/{date}", ["2026-11-20"]),
        (
            "/api/v1/reports/2026-11-20T10:00:00Z",
            "/api/v1/reports/{date}",
            ["2026-11-20T10:00:00Z"],
        ),
        ("/api/v1/orders/ord_8f3k2j9", "/api/v1/orders/{id}", ["ord_8f3k2j9"]),
        ("/api/v1/payments/pay-7Xk29dQ", "/api/v1/payments/{id}", ["pay-7Xk29dQ"]),
        (
            "/api/v1/tokens/eyJhbGciOiJIUzI1NiJ9abc123",
            "/api/v1/tokens/{token}",
            ["eyJhbGciOiJIUzI1NiJ9abc123"],
        ),
    ],
)
def test_identifiers_become_placeholders(path, route, ids):
    assert one(path) == (route, ids)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/deadbeef",  # hex letters but no digit: a word
        "/api/v1/users",
        "/v1/accepted",
        "/api/v2/users/me",
        "/api/v1/items/abcdefab",
        "/static/app.js",
        "/files/report-2026.pdf",
        "/health",
        "/",
        "/api/v1/users/",
    ],
)
def test_words_are_kept(path):
    assert one(path) == (path, [])


def test_resource_ids_are_in_path_order():
    path = (
        "/api/v2/carts/42/items/9f1c2d4e-1b2c-4d5e-8f90-123456789abc/notes/2026-01-31/ord_8f3k2j9"
    )
    assert one(path) == (
        "/api/v2/carts/{id}/items/{uuid}/notes/{date}/{id}",
        ["42", "9f1c2d4e-1b2c-4d5e-8f90-123456789abc", "2026-01-31", "ord_8f3k2j9"],
    )


def test_many_paths_at_once_keep_their_rows():
    paths = ["/a/1", None, "/b/x", "/c/2/d/3", "/"]
    assert template(paths) == [
        ("/a/{id}", ["1"]),
        (None, []),
        ("/b/x", []),
        ("/c/{id}/d/{id}", ["2", "3"]),
        ("/", []),
    ]


def test_prefixed_id_from_the_documented_example():
    assert one("/api/v1/customers/cus-12345") == ("/api/v1/customers/{id}", ["cus-12345"])


RULES = (
    RouteRule(r"/api/v1/users/(\d+)/orders/(\d+)", "/users/{user}/orders/{order}"),
    RouteRule(r"/api/v1/users/.*", "/users/*"),
    RouteRule(r"/api/v1/users/(\d+)/orders/\d+", "/never/used"),  # shadowed by the first rule
)


def test_user_rule_takes_precedence_and_its_groups_are_the_ids():
    assert one("/api/v1/users/42/orders/7", RULES) == ("/users/{user}/orders/{order}", ["42", "7"])


def test_rule_without_groups_gives_no_ids():
    assert one("/api/v1/users/42", RULES) == ("/users/*", [])


def test_path_matching_no_rule_falls_back_to_builtin_classes():
    assert one("/api/v1/orders/5", RULES) == ("/api/v1/orders/{id}", ["5"])


def test_rule_must_match_the_whole_path():
    rules = (RouteRule(r"/api/v1/users/\d+", "/users/one"),)
    assert one("/api/v1/users/42/orders", rules) == ("/api/v1/users/{id}/orders", ["42"])
    assert one("/x/api/v1/users/42", rules) == ("/x/api/v1/users/{id}", ["42"])
    assert one("/api/v1/users/42", rules) == ("/users/one", [])


def test_rule_with_explicit_anchors():
    rules = (RouteRule(r"^/q/(\w+)$", "/q/{name}"),)
    assert one("/q/abc", rules) == ("/q/{name}", ["abc"])
    assert one("/q/abc/def", rules) == ("/q/abc/def", [])


def test_alternation_rule_must_match_the_whole_path():
    rules = (RouteRule(r"/x/(\d+)|/y/(\d+)", "/xy"),)
    assert template(["/x/1/extra", "/pre/y/3"], rules) == [
        ("/x/{id}/extra", ["1"]),
        ("/pre/y/{id}", ["3"]),
    ]


def test_alternation_rule_ids_have_no_nulls():
    rules = (RouteRule(r"/x/(\d+)|/y/(\d+)", "/xy"),)
    assert template(["/x/1", "/y/2"], rules) == [("/xy", ["1"]), ("/xy", ["2"])]


def test_invalid_rule_regex_is_refused():
    with pytest.raises(ValueError, match="invalid regex"):
        RouteRule("/users/(", "/users")


def test_rules_apply_to_stored_events_and_rollups(db_path, tmp_path):
    log = tmp_path / "access.log"
    write_lines(
        log,
        [
            clf_line("/api/v1/users/42/orders/7"),
            clf_line("/api/v1/users/42/orders/8", status=200),
            clf_line("/api/v1/orders/5"),
        ],
    )
    options = IngestOptions(route_rules=RULES)
    with closing(connect(db_path)) as con:
        import_source(str(log), Writer(con), options)
    events = query(
        db_path, 'SELECT path, route, resource_ids FROM conflict_events ORDER BY "offset"'
    )
    assert events == [
        ("/api/v1/users/42/orders/7", "/users/{user}/orders/{order}", ["42", "7"]),
        ("/api/v1/orders/5", "/api/v1/orders/{id}", ["5"]),
    ]
    rollups = query(
        db_path, "SELECT route, sum(requests)::BIGINT FROM request_rollups GROUP BY 1 ORDER BY 1"
    )
    assert rollups == [("/api/v1/orders/{id}", 1), ("/users/{user}/orders/{order}", 2)]


@pytest.mark.parametrize(
    ("path", "route", "ids"),
    [
        ("/é/12345", "/é/{id}", ["12345"]),  # non-ASCII text beside an id
        ("/users/a%40b.io/x", "/users/{email}/x", ["a%40b.io"]),
        ("/x%4/0abcd", "/x%4/0abcd", []),  # "%4" and "0" on either side of a slash: no @
        ("//1//", "//{id}//", ["1"]),
        ("", "", []),
    ],
)
def test_segment_edges(path, route, ids):
    assert one(path) == (route, ids)


def test_ids_deeper_than_the_templated_segments_are_kept():
    # The leading "" is segment 0: "123" is segment 23 in the first path, 24 in the second.
    shallow = "/" + "/".join(["a"] * 22) + "/123"
    deep = "/" + "/".join(["a"] * 23) + "/123"
    assert one(shallow) == (shallow.removesuffix("123") + "{id}", ["123"])
    assert one(deep) == (deep, [])


def test_deep_path_keeps_its_trailing_slash():
    path = "/" + "/".join(["a"] * 22) + "/123/"  # 25 segments, the last one empty
    assert one(path) == (path.removesuffix("123/") + "{id}/", ["123"])


def test_empty_frame_gets_typed_columns():
    frame = apply_routes(pl.DataFrame(schema={"path": pl.String}), with_ids=True)
    assert frame.schema == pl.Schema(
        {"path": pl.String, "route": pl.String, "resource_ids": pl.List(pl.String)}
    )
