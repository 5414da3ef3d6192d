"""The real-world corpus (tests/fixtures/real/corpus): lines other projects wrote, imported as a
user imports them (``--format auto``, keep_all), every stored field compared with what was read
off the line by hand (the ``.expected.jsonl`` beside each log; the field rules and the
adjudicated readings are in the corpus README, the sources in each part's SOURCES.md).

Also the real conflict bodies of part-C/error-codes: the code and kind read from each."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conflictlens.cli import cli
from tests.helpers import query

CORPUS = Path(__file__).parent / "fixtures" / "real" / "corpus"
LOGS = sorted(CORPUS.glob("*/*/*.log"))
FIELDS = (
    "ts",
    "method",
    "path",
    "status",
    "client",
    "user_agent",
    "bytes",
    "latency_ms",
    "request_id",
    "upstream",
    "error_code",
)
# A file is detected as the format its folder names, or as one of these (reason given).
ALSO_DETECTED = {
    "apache-combined": {"nginx-combined", "nginx-common"},  # the same layouts: a named tie
    "apache-common": {"nginx-common"},
    # nginx-main: a trailing XFF field; common: a file whose referers and user agents are all
    # "-" reads nothing more as combined (the fewer fields declared win the tie)
    "nginx-combined": {"apache-combined", "nginx-main", "nginx-common"},
    "nginx-main": {"nginx-combined", "nginx-common"},  # also an X-Forwarded-For masked
    "istio-text": {"envoy-text"},  # Istio 1.0 wrote Envoy's own layout
    "traefik-clf": {"nginx-combined"},  # a U+201C quote breaks Traefik's tail (see README)
    "ingress-nginx": {"apache-common"},  # an operator's own layout, not the controller's
}


def expectations(log: Path) -> list[dict[str, Any]]:
    text = log.with_suffix(".expected.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def options(log: Path) -> list[str]:
    """The log format the source documents for the file, where auto-detection cannot know it."""
    sidecar = log.with_suffix(".options.json")
    return (
        ["--log-format", json.loads(sidecar.read_text())["log_format"]] if sidecar.exists() else []
    )


def line_offsets(log: Path) -> list[int]:
    offsets = [0]
    for line in log.read_bytes().splitlines(keepends=True)[:-1]:
        offsets.append(offsets[-1] + len(line))
    return offsets


@dataclass(frozen=True)
class Imported:
    summaries: dict[str, dict[str, Any]]  # path → its file summary
    events: dict[tuple[str, int], dict[str, Any]]  # (path, offset) → stored fields
    rejects: dict[tuple[str, int], str]  # (path, offset) → reason


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    """Every corpus file imported into one store: the files without a documented log format
    in one command (no file may fail it), the others one by one."""
    folder = tmp_path_factory.mktemp("corpus")
    db, config = folder / "corpus.duckdb", folder / "conflictlens.toml"
    config.write_text("[ingest]\nkeep_all = true\n")
    common = ["ingest", "--config", str(config), "--db", str(db), "--json"]
    runs = [[str(log) for log in LOGS if not options(log)]]
    runs += [[*options(log), str(log)] for log in LOGS if options(log)]
    summaries: dict[str, dict[str, Any]] = {}
    for args in runs:
        result = CliRunner().invoke(cli, [*common, *args])
        assert result.exit_code == 0, result.output
        total = json.loads(result.stdout)
        assert total["failed"] == []
        summaries.update({f["path"]: f for f in total["files"]})
    columns = ", ".join(f"e.{c}" if c in ("path", "ts") else c for c in FIELDS)
    rows = query(
        db,
        f'SELECT s.path, e."offset", {columns} FROM conflict_events e JOIN sources s USING (source_id)',
    )
    events = {(r[0], r[1]): dict(zip(FIELDS, r[2:], strict=True)) for r in rows}
    reasons = query(
        db, 'SELECT s.path, r."offset", r.reason FROM rejects r JOIN sources s USING (source_id)'
    )
    return Imported(summaries, events, {(p, o): reason for p, o, reason in reasons})


def line_cases() -> list[Any]:
    return [
        pytest.param(
            log, expected, id=f"{log.relative_to(CORPUS).with_suffix('')}:{expected['line']}"
        )
        for log in LOGS
        for expected in expectations(log)
    ]


def test_the_corpus_is_large_and_varied_enough() -> None:
    """The issue's bar for the set: at least 300 lines, 12 sources, every supported format."""
    assert sum(len(expectations(log)) for log in LOGS) >= 300
    repositories = set()
    for sources in CORPUS.glob("*/SOURCES.md"):
        for row in sources.read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in row.split("|")]
            if len(cells) > 3 and "/" in cells[3] and not cells[3].startswith("-"):
                repositories.add(cells[3].split("·")[0].strip().split()[0])
    assert len(repositories) >= 12, sorted(repositories)
    folders = {log.parent.name for log in LOGS}
    from conflictlens.ingest.formats import FORMATS

    # nginx-extended is conflictlens's own example of a layout that logs the error code (no
    # server writes it by default); no APIPark call log was found under a licence we can copy.
    missing = set(FORMATS) - folders - {"nginx-extended", "apipark-json"}
    assert not missing, missing


def test_every_log_has_one_expectation_per_line() -> None:
    for log in LOGS:
        data = log.read_bytes()
        # A file may end without a newline as published (its last line is still a line).
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        assert [e["line"] for e in expectations(log)] == list(range(1, lines + 1)), log


@pytest.mark.parametrize("log", LOGS, ids=[str(log.relative_to(CORPUS)) for log in LOGS])
def test_each_file_is_detected_as_its_format(imported: Imported, log: Path) -> None:
    summary = imported.summaries[str(log)]
    wanted = log.parent.name
    if options(log):
        assert summary["format"] == "custom"
    elif all(e["expect"] != "event" for e in expectations(log)):
        # No request in it: imported, every line a reject that says why (the format's own
        # reason for its connection entries, else "not an access-log entry ...").
        also = ALSO_DETECTED.get(wanted, set())
        assert summary["format"] in {wanted, "unrecognised", *also}, summary
        assert summary["rejected"] == sum(e["expect"] == "reject" for e in expectations(log))
    else:
        assert summary["format"] in {wanted, *ALSO_DETECTED.get(wanted, ())}, summary


@pytest.mark.parametrize(("log", "expected"), line_cases())
def test_each_line_is_stored_as_read_by_hand_or_rejected(
    imported: Imported, log: Path, expected: dict[str, Any]
) -> None:
    key = (str(log), line_offsets(log)[expected["line"] - 1])
    stored, reason = imported.events.get(key), imported.rejects.get(key)
    if expected["expect"] == "skip":  # an empty line: counted, never stored
        assert (stored, reason) == (None, None)
        return
    if expected["expect"] == "reject":
        assert stored is None, f"stored, but {expected['why']}"
        assert reason, "not stored and no reject"
        return
    assert reason is None, f"rejected: {reason}"
    assert stored is not None
    for field in FIELDS:
        if field not in expected:
            continue
        want, have = expected[field], stored[field]
        if field == "ts" and want is not None:
            moment = dt.datetime.fromisoformat(want.replace("Z", "+00:00"))
            want = moment.astimezone(dt.UTC).replace(tzinfo=None)
        if field == "latency_ms" and want is not None and have is not None:
            assert math.isclose(have, want, abs_tol=1e-6), field
        else:
            assert have == want, field


# --- real conflict bodies -----------------------------------------------------------------------

BODIES = CORPUS / "part-C" / "error-codes" / "bodies.jsonl"


def bodies() -> list[dict[str, Any]]:
    return [json.loads(line) for line in BODIES.read_text(encoding="utf-8").splitlines()]


def kong_line(number: int, body: dict[str, Any], header: bool) -> str:
    """A Kong http-log entry holding the real body (or the real error-code header)."""
    response: dict[str, Any] = {"status": body["status"], "size": len(body["body"])}
    if header:
        response["headers"] = {"x-error-code": body["header_error_code"]}
    else:
        response["body"] = body["body"]
    return json.dumps(
        {
            "started_at": 1_764_000_000_000 + number,
            "client_ip": "203.0.113.9",
            "request": {"method": "PUT", "uri": f"/api/v1/things/{number}"},
            "response": response,
            "latencies": {"request": 5},
        }
    )


@pytest.fixture(scope="module")
def body_events(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    folder = tmp_path_factory.mktemp("bodies")
    lines = [kong_line(n, b, header=False) for n, b in enumerate(bodies())]
    lines += [
        kong_line(100 + n, b, header=True) for n, b in enumerate(bodies()) if b["header_error_code"]
    ]
    log = folder / "kong.log"
    log.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["ingest", "--db", str(folder / "b.duckdb"), str(log)])
    assert result.exit_code == 0, result.output
    rows = query(folder / "b.duckdb", "SELECT path, error_code, kind FROM conflict_events")
    return {path: (code, kind) for path, code, kind in rows}


@pytest.mark.parametrize(
    ("number", "body"), list(enumerate(bodies())), ids=[b["expected_code"] for b in bodies()]
)
def test_real_conflict_bodies_give_their_code_and_kind(
    body_events: dict[str, tuple[str, str]], number: int, body: dict[str, Any]
) -> None:
    assert body_events[f"/api/v1/things/{number}"] == (body["expected_code"], body["expected_kind"])
    if body["header_error_code"]:
        code, kind = body_events[f"/api/v1/things/{100 + number}"]
        assert (code, kind) == (body["header_error_code"], body["expected_kind"])
