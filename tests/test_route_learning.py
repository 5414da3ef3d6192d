"""Learned and declared routes: the route map over stored events, rollups and new lines.

The bar: on a log of 50 route families whose ids have many shapes, at least 95 % of the paths
get the right template (placeholders compared by position, not by name) and no two families
share a route.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import click
import polars as pl
import pytest

from conflictlens.analysis.openapi import OpenAPIError, declared_routes, import_openapi
from conflictlens.analysis.route_learning import (
    LearningSettings,
    learn_and_apply,
    learn_from_counts,
)
from conflictlens.cli import cli
from conflictlens.cli_routes import routes
from conflictlens.ingest import IngestOptions, import_source
from conflictlens.sample_logs.route_families import (
    FAMILIES,
    STATIC_SIBLINGS,
    route_family_paths,
    write_route_family_log,
)
from conflictlens.store import Writer, apply_route_map, connect, read_route_map
from tests.helpers import clf_line, cli_json, query, write_lines

assert cli.get_command(click.Context(cli), "routes") is routes

BAR = 0.95


def ingest(db: Path, log: Path, *, keep_all: bool = True) -> None:
    with closing(connect(db)) as con:
        import_source(str(log), Writer(con), IngestOptions(keep_all=keep_all))


def shape(column: str) -> pl.Expr:
    """A template with its placeholders unnamed: /users/{name} and /users/{id} are alike."""
    return pl.col(column).str.replace_all(r"\{[^{}/]+\}", "{}")


def events_of(db: Path, log: Path) -> pl.DataFrame:
    """The stored events of one log, in line order."""
    with closing(connect(db, read_only=True)) as con:
        frame: pl.DataFrame = con.sql(
            "SELECT e.path, e.route, e.resource_ids FROM conflict_events e "
            'JOIN sources s USING (source_id) WHERE s.path = $log ORDER BY e."offset"',
            params={"log": str(log)},
        ).pl()
    return frame


def scored(db: Path, log: Path, truth: pl.DataFrame) -> pl.DataFrame:
    """Each line's stored route beside its true template, and whether their shapes agree."""
    events = events_of(db, log)
    assert events.height == truth.height  # keep_all: one event per line
    assert events["path"].equals(truth["path"])
    return pl.concat([events, truth.select("template", "family")], how="horizontal").with_columns(
        right=shape("route") == shape("template")
    )


def merged_families(frame: pl.DataFrame) -> pl.DataFrame:
    """Stored routes that hold paths of more than one family."""
    return (
        frame.group_by("route")
        .agg(pl.col("family").n_unique().alias("families"), pl.col("template").unique())
        .filter(pl.col("families") > 1)
    )


def accuracy(frame: pl.DataFrame) -> tuple[float, float]:
    """Share of lines, and of distinct paths, that got the right template."""
    by_line = float(frame["right"].mean())  # type: ignore[arg-type]
    by_path = float(frame.unique("path")["right"].mean())  # type: ignore[arg-type]
    return by_line, by_path


# --- The bar -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pl.DataFrame, dict]:
    """30,000 lines over the 50 families, imported (every line an event) and learned from.
    Read-only: copy the database before changing it."""
    folder = tmp_path_factory.mktemp("families")
    log = folder / "access.log"
    truth = write_route_family_log(log, 30_000, seed=7)
    db = folder / "t.duckdb"
    ingest(db, log)
    with closing(connect(db)) as con:
        summary = learn_and_apply(con)
    return db, log, truth, summary


def copy_of(db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(db, copy)
    return copy


def test_the_generator_has_50_families_and_is_deterministic():
    assert len(FAMILIES) == 50
    assert len({f.template for f in FAMILIES + STATIC_SIBLINGS}) == 50 + len(STATIC_SIBLINGS)
    assert route_family_paths(2000, seed=3).equals(route_family_paths(2000, seed=3))
    assert not route_family_paths(2000, seed=3).equals(route_family_paths(2000, seed=4))


def test_learned_routes_meet_the_bar(learned, capsys):
    db, log, truth, summary = learned
    frame = scored(db, log, truth)
    by_line, by_path = accuracy(frame)
    report = (
        f"right template: {by_line:.2%} of {frame.height} lines, {by_path:.2%} of "
        f"{frame['path'].n_unique()} distinct paths; learned {summary}"
    )
    with capsys.disabled():  # the measured figure belongs in the test output
        print(f"\n{report}")
    assert by_line >= BAR and by_path >= BAR, report
    assert merged_families(frame).is_empty(), merged_families(frame)


def test_static_siblings_stay_literal(learned):
    db, log, truth, _ = learned
    frame = scored(db, log, truth)
    statics = frame.filter(pl.col("template").is_in([f.template for f in STATIC_SIBLINGS]))
    assert statics.height > 0
    assert (statics["route"] == statics["path"]).all()


def test_learned_placeholders_are_named_by_their_values(learned):
    db, _, _, _ = learned
    stored = {row[0] for row in query(db, "SELECT DISTINCT route FROM conflict_events")}
    assert {
        "/files/{file}",
        "/shop/products/{slug}",
        "/api/v2/skus/{code}",
        "/api/v1/users/{name}",
        "/releases/{version}/notes",
        "/reports/daily/{date}",
        "/blobs/{hash}",
    } <= stored


def test_remapped_events_carry_the_ids_of_their_placeholders_in_path_order(learned):
    db, log, _, _ = learned
    events = events_of(db, log)
    expected = [
        [seg for seg, part in zip(p.split("/"), r.split("/"), strict=True) if part[:1] == "{"]
        for p, r in zip(events["path"], events["route"], strict=True)
    ]
    assert events["resource_ids"].to_list() == expected
    sample = events.filter(pl.col("route") == "/repos/{name}/{name}/issues/{id}").row(0)
    _, _, owner, repo, _, issue = sample[0].split("/")
    assert sample[2] == [owner, repo, issue]


def test_rollups_take_the_learned_routes_too(learned):
    db, _, _, _ = learned
    event_routes = {r[0] for r in query(db, "SELECT DISTINCT route FROM conflict_events")}
    rollup_routes = {r[0] for r in query(db, "SELECT DISTINCT route FROM request_rollups")}
    assert rollup_routes == event_routes  # keep_all: the same lines
    assert query(db, "SELECT sum(requests)::BIGINT FROM request_rollups") == [(30_000,)]
    remapped = query(
        db,
        "SELECT count(*) FROM request_rollups r JOIN route_map m USING (route) "
        "WHERE m.mapped <> m.route",
    )
    assert remapped == [(0,)]


def test_applying_and_learning_again_changes_nothing(learned, tmp_path):
    db = copy_of(learned[0], tmp_path)
    before = query(db, 'SELECT route, resource_ids FROM conflict_events ORDER BY "offset"')
    with closing(connect(db)) as con:
        assert apply_route_map(con) == 0
        again = learn_and_apply(con)
        kept = read_route_map(con).filter(pl.col("origin") == "learned").height
    assert again["rows_changed"] == 0
    assert kept >= learned[3]["routes_mapped"]  # earlier rows stay: new lines still need them
    assert query(db, 'SELECT route, resource_ids FROM conflict_events ORDER BY "offset"') == before


def test_new_lines_take_the_learned_templates(learned, tmp_path, capsys):
    db = copy_of(learned[0], tmp_path)
    log = tmp_path / "later.log"
    truth = write_route_family_log(log, 6000, seed=99)  # mostly values never seen before
    ingest(db, log)
    frame = scored(db, log, truth)
    by_line, by_path = accuracy(frame)
    report = f"new lines: right template for {by_line:.2%} of lines, {by_path:.2%} of paths"
    with capsys.disabled():  # the measured figure belongs in the test output
        print(f"\n{report}")
    assert by_line >= BAR and by_path >= BAR, report
    assert merged_families(frame).is_empty()
    files = frame.filter(pl.col("template") == "/files/{file}")
    assert (files["route"] == "/files/{file}").all()
    assert files["resource_ids"].to_list() == [[p.rsplit("/", 1)[1]] for p in files["path"]]


# --- The learner on its own ----------------------------------------------------------------------


def learn(rows: list[tuple[str, int]], **settings: int) -> dict[str, str]:
    counts = pl.DataFrame(rows, schema={"route": pl.String, "hits": pl.Int64}, orient="row")
    learned = learn_from_counts(counts, LearningSettings(**settings))
    return dict(learned.iter_rows())


def test_families_with_the_same_shape_stay_apart():
    rows = [(f"/api/v1/users/user-{i}x", 2) for i in range(20)]
    rows += [(f"/api/v1/orders/order-{i}y", 2) for i in range(20)]
    mapped = learn(rows)
    assert set(mapped.values()) == {"/api/v1/users/{slug}", "/api/v1/orders/{slug}"}


def test_busy_static_siblings_stay_literal_and_are_recorded():
    rows = [(f"/api/v1/users/{name}{i}", 2) for i, name in enumerate(["ann", "bo", "cy"] * 7)]
    rows += [("/api/v1/users/me", 400), ("/api/v1/users/search", 90)]
    mapped = learn(rows)
    assert mapped["/api/v1/users/me"] == "/api/v1/users/me"
    assert mapped["/api/v1/users/search"] == "/api/v1/users/search"
    assert mapped["/api/v1/users/ann0"] == "/api/v1/users/{name}"


def test_a_plain_word_among_codes_stays_literal():
    rows = [(f"/skus/AB-{1000 + i}-X", 1) for i in range(20)] + [("/skus/export", 3)]
    mapped = learn(rows)
    assert mapped["/skus/export"] == "/skus/export"
    assert mapped["/skus/AB-1000-X"] == "/skus/{code}"


def test_an_api_vocabulary_is_not_a_variable():
    resources = ["users", "orders", "invoices", "teams", "carts", "items", "tags", "books"]
    resources += ["notes", "files", "plans", "users2", "ships", "rates", "zones", "taxes"]
    rows = [(f"/api/v1/{r}", 50) for r in resources]
    rows += [(f"/api/v1/{r}/{{id}}", 500) for r in resources]
    assert learn(rows) == {}


def test_templated_values_join_the_learned_placeholder():
    rows = [(f"/files/q{i}.pdf", 1) for i in range(12)] + [("/files/{token}", 40)]
    mapped = learn(rows)
    assert mapped["/files/{token}"] == "/files/{file}"
    assert mapped["/files/q3.pdf"] == "/files/{file}"


def test_too_few_values_stay_literal():
    rows = [(f"/files/q{i}.pdf", 1) for i in range(5)]
    assert learn(rows) == {}
    assert len(learn(rows, min_distinct=5)) == 5


def test_a_node_keeps_the_name_it_already_has():
    rows = [("/files/{file}", 100)] + [(f"/files/{w}-{i}", 1) for i, w in enumerate("abcdefghijkl")]
    assert set(learn(rows).values()) == {"/files/{file}"}


# --- OpenAPI -------------------------------------------------------------------------------------

OPENAPI_YAML = """
openapi: 3.0.3
info: {title: shop, version: "1"}
servers:
  - url: https://api.example.com/api/v1
paths:
  /users/{userId}:
    get: {responses: {"200": {description: ok}}}
  /users/me:
    get: {responses: {"200": {description: ok}}}
  /users/{userId}/orders/{orderId}:
    put: {responses: {"409": {description: conflict}}}
  /files/{fileName}:
    get: {responses: {"200": {description: ok}}}
  /reports/report-{year}.pdf:
    get: {responses: {"200": {description: ok}}}
  x-internal: {}
"""

SWAGGER_JSON = json.dumps(
    {
        "swagger": "2.0",
        "info": {"title": "legacy", "version": "2"},
        "basePath": "/v2/",
        "paths": {"/documents/{docId}": {"put": {}}, "/documents/{docId}/lock": {"post": {}}},
    }
)

ORDER = "9f1c2d4e-1b2c-4d5e-8f90-123456789abc"


def openapi_store(db: Path, tmp_path: Path, paths: list[str], name: str = "api.log") -> Path:
    log = tmp_path / name
    write_lines(log, [clf_line(p) for p in paths] + [clf_line(p, status=200) for p in paths])
    ingest(db, log, keep_all=False)
    return log


def stored(db: Path, log: Path) -> list[tuple[str, str, list[str]]]:
    return list(events_of(db, log).iter_rows())


def test_declared_routes_take_the_server_base_path():
    assert declared_routes(OPENAPI_YAML) == [
        "/api/v1/files/{fileName}",
        "/api/v1/reports/report-{year}.pdf",
        "/api/v1/users/me",
        "/api/v1/users/{userId}",
        "/api/v1/users/{userId}/orders/{orderId}",
    ]
    assert declared_routes(SWAGGER_JSON) == ["/v2/documents/{docId}", "/v2/documents/{docId}/lock"]


def test_server_variables_take_their_defaults():
    document = """
openapi: 3.1.0
servers:
  - url: "https://{region}.example.com/{base}"
    variables: {region: {default: eu}, base: {default: api/v3}}
  - url: /api/v3
paths: {/ping: {}}
"""
    assert declared_routes(document) == ["/api/v3/ping"]


def test_openapi_maps_stored_routes_with_parameter_names(db_path, tmp_path):
    paths = [
        "/api/v1/users/123",
        "/api/v1/users/alice",
        "/api/v1/users/me",
        f"/api/v1/users/123/orders/{ORDER}",
        "/api/v1/files/q3.pdf",
        "/api/v1/reports/report-2026.pdf",
        "/api/v1/health",
    ]
    log = openapi_store(db_path, tmp_path, paths)
    with closing(connect(db_path)) as con:
        summary = import_openapi(con, OPENAPI_YAML, source="openapi.yaml")
    assert summary["declared"] == 5 and summary["unmatched"] == 1  # /api/v1/health
    assert stored(db_path, log) == [
        ("/api/v1/users/123", "/api/v1/users/{userId}", ["123"]),
        ("/api/v1/users/alice", "/api/v1/users/{userId}", ["alice"]),
        ("/api/v1/users/me", "/api/v1/users/me", []),  # the literal beats the parameter
        (
            f"/api/v1/users/123/orders/{ORDER}",
            "/api/v1/users/{userId}/orders/{orderId}",
            ["123", ORDER],
        ),
        ("/api/v1/files/q3.pdf", "/api/v1/files/{fileName}", ["q3.pdf"]),
        ("/api/v1/reports/report-2026.pdf", "/api/v1/reports/report-{year}.pdf", []),
        ("/api/v1/health", "/api/v1/health", []),
    ]
    rollups = {r[0] for r in query(db_path, "SELECT DISTINCT route FROM request_rollups")}
    assert rollups == {r[1] for r in stored(db_path, log)}


def test_swagger_json_with_a_base_path(db_path, tmp_path):
    log = openapi_store(db_path, tmp_path, ["/v2/documents/42", "/v2/documents/42/lock"])
    with closing(connect(db_path)) as con:
        import_openapi(con, SWAGGER_JSON)
    assert [r[1] for r in stored(db_path, log)] == [
        "/v2/documents/{docId}",
        "/v2/documents/{docId}/lock",
    ]


def test_new_lines_map_onto_declared_paths(db_path, tmp_path):
    openapi_store(db_path, tmp_path, ["/api/v1/users/1"])
    with closing(connect(db_path)) as con:
        import_openapi(con, OPENAPI_YAML)
    log = openapi_store(
        db_path, tmp_path, ["/api/v1/users/zed", f"/api/v1/users/7/orders/{ORDER}"], "new.log"
    )
    assert stored(db_path, log) == [
        ("/api/v1/users/zed", "/api/v1/users/{userId}", ["zed"]),
        (
            f"/api/v1/users/7/orders/{ORDER}",
            "/api/v1/users/{userId}/orders/{orderId}",
            ["7", ORDER],
        ),
    ]


def test_declared_routes_take_precedence_over_learned_ones(db_path, tmp_path):
    names = [f"/api/v1/users/{n}{i}" for i, n in enumerate(["ann", "bo.b", "cy_c"] * 5)]
    log = openapi_store(db_path, tmp_path, names)

    def after(step) -> set[str]:
        with closing(connect(db_path)) as con:
            step(con)
        return {r[1] for r in stored(db_path, log)}

    assert after(learn_and_apply) == {"/api/v1/users/{name}"}
    assert after(lambda con: import_openapi(con, OPENAPI_YAML)) == {"/api/v1/users/{userId}"}
    assert after(learn_and_apply) == {"/api/v1/users/{userId}"}  # learning does not take it back
    later = openapi_store(db_path, tmp_path, ["/api/v1/users/dee9", "/api/v1/users/ann0"], "b.log")
    assert {r[1] for r in stored(db_path, later)} == {"/api/v1/users/{userId}"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("paths: [unclosed", "openapi.yaml: not valid YAML: "),
        ('{"openapi": "3.0.0", "paths": ', "openapi.yaml: not valid JSON: "),
        ("openapi: 3.0.0\ninfo: {title: x}\n", "openapi.yaml: not an OpenAPI document: no 'paths'"),
        ("- just\n- a list\n", "openapi.yaml: not an OpenAPI document: not a mapping"),
        ("paths: {}\n", "openapi.yaml: not an OpenAPI document: no 'openapi' or 'swagger'"),
        ("openapi: 4.0.0\npaths: {}\n", "unsupported OpenAPI version '4.0.0'"),
        ('openapi: 3.0.0\npaths: {"/users/{id": {}}\n', "unbalanced braces"),
        ("openapi: 3.0.0\npaths: {users: {}}\n", "does not start with '/'"),
        ("openapi: 3.0.0\nservers: x\npaths: {/a: {}}\n", "'servers' is not a list"),
    ],
)
def test_a_bad_document_is_one_clear_line(text, message):
    with pytest.raises(OpenAPIError) as caught:
        declared_routes(text, source="openapi.yaml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


# --- The command line ----------------------------------------------------------------------------


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_cli_import_learn_and_list(run_cli, db_path, tmp_path):
    openapi_store(db_path, tmp_path, ["/api/v1/users/1"] + [f"/files/f{i}.pdf" for i in range(12)])
    document = tmp_path / "openapi.yaml"
    document.write_text(OPENAPI_YAML, encoding="utf-8")
    imported = cli_json(run_cli("routes", "import", document, "--db", db_path, "--json"))
    assert imported["routes_mapped"] == 1 and imported["declared"] == 5
    learned = cli_json(run_cli("routes", "learn", "--db", db_path, "--json"))
    assert learned["templates"] == 1 and learned["routes_mapped"] == 12
    listed = cli_json(run_cli("routes", "list", "--db", db_path, "--json"))
    assert {"route": "/api/v1/users/{id}", "mapped": "/api/v1/users/{userId}"}.items() <= next(
        r for r in listed if r["route"] == "/api/v1/users/{id}"
    ).items()
    assert {r["origin"] for r in listed} == {"learned", "openapi"}
    table = run_cli("routes", "list", "--db", db_path)
    assert table.exit_code == 0 and "/files/{file}" in table.stdout
    text = run_cli("routes", "learn", "--db", db_path)
    assert text.exit_code == 0 and "rows rewritten" in text.stdout


def test_cli_errors_are_one_line(run_cli, db_path, tmp_path):
    assert_one_line_error(
        run_cli("routes", "import", tmp_path / "missing.yaml", "--db", db_path), "no such file"
    )
    bad = tmp_path / "openapi.yaml"
    bad.write_text("openapi: 3.0.0\ninfo: {title: x}\n", encoding="utf-8")
    assert_one_line_error(
        run_cli("routes", "import", bad, "--db", db_path),
        f"{bad}: not an OpenAPI document: no 'paths'",
    )
    assert not db_path.exists()  # the document is read before the store is touched
    assert_one_line_error(run_cli("routes", "list", "--db", db_path), "no database at")
    assert_one_line_error(
        run_cli("routes", "learn", "--db", tmp_path / "no" / "t.duckdb"), "does not exist"
    )


HOLD_DB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_cli_says_when_another_process_holds_the_store(run_cli, db_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DB, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        for args in (("learn",), ("list",)):
            assert_one_line_error(
                run_cli("routes", *args, "--db", db_path), "in use by another process"
            )
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.slow
def test_cli_says_when_serve_owns_the_store(run_cli, db_path, tmp_path):
    from tests.test_serve import Serve

    openapi_store(db_path, tmp_path, ["/api/v1/users/1"])
    server = Serve(db_path)
    try:
        result = run_cli("routes", "learn", "--db", db_path)
    finally:
        server.stop()
    assert_one_line_error(result, f"serve owns {db_path}", "stop it to learn routes")
