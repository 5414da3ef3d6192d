"""The command line: help, one-line errors, JSON output, time ranges, config and time parsing."""

from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from conflictlens.cli import LAZY_COMMANDS, cli
from conflictlens.store import connect
from conflictlens.timeparse import parse_time
from tests.helpers import clf_line, clf_ts, cli_json, query, store_counts, write_lines

COMMANDS = cli.list_commands(click.Context(cli))


def command(name: str) -> click.Command:
    found = cli.get_command(click.Context(cli), name)
    assert found is not None, name
    return found


def assert_one_line_error(result, *needles: str, exit_code: int = 1) -> None:
    """A user error: non-zero exit, one 'Error: ...' line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# --- help ------------------------------------------------------------------------------------------


def test_there_are_commands():
    assert {"ingest", "clusters", "sample"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_documents_itself_with_an_example(name):
    found = command(name)
    assert found.help and found.help.strip()
    assert "Example:" in (found.callback.__doc__ or "")
    assert found.get_short_help_str().strip()
    for param in found.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_of_every_command(run_cli, name):
    result = run_cli(name, "--help")
    assert result.exit_code == 0 and result.exception is None
    assert result.stdout.startswith("Usage: ")
    assert "Example:" in result.stdout
    assert f" {name} " in result.stdout.splitlines()[0]


def test_commands_kept_in_other_modules_are_registered_and_not_imported_by_ingest():
    # they load when run or listed; `ingest` starts without them (nor analysis/)
    from conflictlens.cli_analysis import COMMANDS as ANALYSIS

    assert {c.name for c in ANALYSIS} <= set(COMMANDS)
    assert all(command(c.name) is c for c in ANALYSIS)
    lazy = {module.split(":")[0] for module in LAZY_COMMANDS.values()}
    code = "import sys, conflictlens.cli; print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert lazy & set(loaded) == set()
    assert not [m for m in loaded if m.startswith("conflictlens.analysis")]
    assert "urllib.request" not in loaded


@pytest.mark.parametrize("sample", ["nginx-combined.log", "kong-json.log", "traefik-json.log"])
def test_an_import_does_not_load_numpy_ma(tmp_path, sample):
    # Polars imports numpy.ma (20 ms) the first time a Series is made from a numpy array:
    # the import path builds its arrays through Arrow instead
    log = Path(__file__).parents[1] / "sample_logs" / sample
    code = (
        "import sys; from conflictlens.cli import main\n"
        "try:\n"
        f"    main(['ingest', '--db', {str(tmp_path / 'x.duckdb')!r}, '--json', {str(log)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('numpy.ma' in sys.modules, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFLICTLENS")}
    env["CONFLICTLENS_DEBUG"] = "1"  # a normal exit (not os._exit), so that the print runs
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert json.loads(done.stdout)["lines"] > 0
    assert done.stderr.strip().splitlines()[-1] == "False"


def test_top_level_help_lists_every_command(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    for name in COMMANDS:
        assert f"  {name}" in result.stdout


# --- one-line errors ---------------------------------------------------------------------------------


@pytest.fixture
def small_log(tmp_path: Path) -> Path:
    log = tmp_path / "small.log"
    write_lines(log, [clf_line("/api/v1/users/1"), clf_line("/api/v1/users/2", status=200)])
    return log


def test_missing_input_file(run_cli, db_path, tmp_path):
    assert_one_line_error(
        run_cli("ingest", "--db", db_path, tmp_path / "nope.log"), "nope.log", "no such file"
    )


def test_directory_as_input(run_cli, db_path, tmp_path):
    assert_one_line_error(run_cli("ingest", "--db", db_path, tmp_path), "is a directory")


def test_clusters_without_a_database(run_cli, tmp_path):
    missing = tmp_path / "none.duckdb"
    assert_one_line_error(
        run_cli("clusters", "--db", missing), "no database at", "conflictlens ingest"
    )
    assert not missing.exists()  # a read never creates the store


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "24 hours", "5y"])
def test_bad_time_option(run_cli, db_path, small_log, option, value):
    cli_json(run_cli("ingest", "--db", db_path, "--json", small_log))
    assert_one_line_error(
        run_cli("clusters", "--db", db_path, option, value), "invalid time", repr(value)
    )


def test_unknown_format_fails_before_touching_the_store(run_cli, db_path, small_log):
    assert_one_line_error(
        run_cli("ingest", "--db", db_path, "--format", "bogus", small_log), "unknown format 'bogus'"
    )
    assert not db_path.exists()


@pytest.mark.parametrize(
    ("log_format", "needle"),
    [
        ('$remote_addr [$time_local] "$request"', "no status variable"),
        ('$remote_addr "$request" $status', "no time variable"),
        ("no variables at all", "no %directives"),
        ('%h %{%d/%b}t "%r" %>s', "unsupported Apache directive"),
    ],
)
def test_invalid_log_format_fails_before_touching_the_store(
    run_cli, db_path, small_log, log_format, needle
):
    assert_one_line_error(
        run_cli("ingest", "--db", db_path, "--log-format", log_format, small_log), needle
    )
    assert not db_path.exists()


def test_database_folder_missing(run_cli, tmp_path, small_log):
    assert_one_line_error(
        run_cli("ingest", "--db", tmp_path / "no" / "t.duckdb", small_log), "does not exist"
    )


HOLD_DB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def locked_db(db_path):
    """The database opened for writing by another process, for as long as the test runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DB, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding", (
            holder.stderr.read() if holder.stderr else ""
        )
        yield db_path, holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)
        for stream in (holder.stdout, holder.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("command", ["ingest", "clusters"])
def test_database_locked_by_another_process(run_cli, locked_db, small_log, command):
    db, pid = locked_db
    args = ("ingest", "--db", db, small_log) if command == "ingest" else ("clusters", "--db", db)
    assert_one_line_error(run_cli(*args), "in use by another process", f"PID {pid}")


def newer_schema_db(db_path: Path) -> Path:
    con = connect(db_path)
    con.execute("INSERT INTO schema_version VALUES (999)")
    con.close()
    return db_path


def test_database_from_a_newer_version(run_cli, db_path, small_log):
    newer_schema_db(db_path)
    result = run_cli("ingest", "--db", db_path, small_log)
    gc.collect()
    assert_one_line_error(result, "newer", "upgrade conflictlens")


def test_sample_with_unknown_time_zone(run_cli, tmp_path):
    assert_one_line_error(
        run_cli("sample", "--lines", 10, "--tz", "Mars/Base", "--out", tmp_path / "x.log"),
        "Mars/Base",
    )


def test_sample_refuses_zero_lines(run_cli, tmp_path):
    assert_one_line_error(run_cli("sample", "--lines", 0, "--out", tmp_path / "x.log"), "--lines")


def test_real_entry_point_prints_one_line_and_no_traceback(tmp_path):
    """Through `python -m conflictlens` (main()), not click's test runner."""
    result = subprocess.run(
        [sys.executable, "-m", "conflictlens", "clusters", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: no database at {tmp_path / 'none.duckdb'} (import logs first: "
        f"conflictlens ingest --db {tmp_path / 'none.duckdb'} FILE)"
    ]


def test_real_entry_point_ingest_ends_with_its_output_and_a_closed_store(tmp_path):
    """ingest ends its process without tearing the interpreter down: its output is complete,
    the exit code 0, and the store readable afterwards."""
    log = Path(__file__).resolve().parents[1] / "sample_logs" / "nginx-combined.log"
    command = [sys.executable, "-m", "conflictlens", "ingest", "--db", "store.duckdb", str(log)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    result = run([*command, "--json"])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["lines"] == summary["parsed"] > 0 and summary["rejected"] == 0
    again = run(command)
    assert again.returncode == 0, again.stderr
    assert again.stdout.rstrip().endswith(
        "already imported up to byte " + str(log.stat().st_size) + ")"
    )
    listed = run(
        [sys.executable, "-m", "conflictlens", "clusters", "--db", "store.duckdb", "--json"]
    )
    assert listed.returncode == 0, listed.stderr
    assert sum(row["conflicts"] for row in json.loads(listed.stdout)) == summary["conflicts"] > 0


# --- clusters --json and time ranges ----------------------------------------------------------------

T0 = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
PLUS2 = dt.timezone(dt.timedelta(hours=2))

# (instant, method, path, status): the conflicts and the plain requests around 06:00-08:00 UTC.
TINY = [
    (T0 - dt.timedelta(seconds=1), "PUT", "/api/v1/users/1", 409),  # 05:59:59 (before)
    (T0 - dt.timedelta(seconds=30), "PUT", "/api/v1/users/2", 200),  # 05:59:30 (before)
    (T0, "PUT", "/api/v1/users/3", 409),  # 06:00:00 (since: in)
    (T0 + dt.timedelta(minutes=30), "PUT", "/api/v1/users/4", 409),  # 06:30:00
    (T0 + dt.timedelta(minutes=30), "PUT", "/api/v1/users/5", 200),  # 06:30:00
    (T0 + dt.timedelta(minutes=45), "POST", "/api/v1/users", 409),  # 06:45:00
    (T0 + dt.timedelta(hours=2, seconds=-1), "PUT", "/api/v1/users/6", 412),  # 07:59:59
    (T0 + dt.timedelta(hours=2), "PUT", "/api/v1/users/7", 409),  # 08:00:00 (until: out)
    (T0 + dt.timedelta(hours=2, minutes=10), "PUT", "/api/v1/users/8", 200),  # 08:10:00 (after)
]


@pytest.fixture
def tiny_db(run_cli, db_path, tmp_path) -> Path:
    """A store with TINY imported; half of the lines are written with a +02:00 offset."""
    log = tmp_path / "tiny.log"
    lines = [
        clf_line(
            path,
            status=status,
            method=method,
            ts=clf_ts(moment.astimezone(PLUS2) if i % 2 else moment),
        )
        for i, (moment, method, path, status) in enumerate(TINY)
    ]
    write_lines(log, lines)
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert (summary["lines"], summary["rejected"]) == (len(TINY), 0)
    return db_path


def clusters(run_cli, db: Path, *args) -> list[dict]:
    return cli_json(run_cli("clusters", "--db", db, "--json", *args))


def summarise(records: list[dict]) -> set[tuple]:
    return {(r["method"], r["route"], r["status"], r["conflicts"], r["requests"]) for r in records}


def test_clusters_json_shape(run_cli, tiny_db):
    records = clusters(run_cli, tiny_db)
    assert isinstance(records, list) and records
    keys = {"method", "route", "status", "error_code", "kind", "conflicts", "requests", "ratio"}
    for record in records:
        assert isinstance(record, dict)
        assert keys <= set(record), set(record)
        assert isinstance(record["conflicts"], int) and isinstance(record["requests"], int)
        assert record["ratio"] == record["conflicts"] / record["requests"]
    assert [r["conflicts"] for r in records] == sorted(
        (r["conflicts"] for r in records), reverse=True
    )


def test_clusters_whole_range(run_cli, tiny_db):
    assert summarise(clusters(run_cli, tiny_db)) == {
        ("PUT", "/api/v1/users/{id}", 409, 4, 8),
        ("PUT", "/api/v1/users/{id}", 412, 1, 8),
        ("POST", "/api/v1/users", 409, 1, 1),
    }


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-11-20T06:00:00Z", "2026-11-20T08:00:00Z"),
        ("2026-11-20T08:00:00+02:00", "2026-11-20T10:00:00+02:00"),
        ("2026-11-20T06:00:00", "2026-11-20T08:00"),
    ],
)
def test_since_is_inclusive_and_until_exclusive(run_cli, tiny_db, since, until):
    # in range: 06:00:00 (409), 06:30 (409 + 200), 06:45 POST 409, 07:59:59 (412)
    assert summarise(clusters(run_cli, tiny_db, "--since", since, "--until", until)) == {
        ("PUT", "/api/v1/users/{id}", 409, 2, 4),
        ("PUT", "/api/v1/users/{id}", 412, 1, 4),
        ("POST", "/api/v1/users", 409, 1, 1),
    }


def test_since_only_and_until_only(run_cli, tiny_db):
    assert summarise(clusters(run_cli, tiny_db, "--since", "2026-11-20T07:00:00Z")) == {
        ("PUT", "/api/v1/users/{id}", 409, 1, 3),
        ("PUT", "/api/v1/users/{id}", 412, 1, 3),
    }
    assert summarise(clusters(run_cli, tiny_db, "--until", "2026-11-20T06:00:00Z")) == {
        ("PUT", "/api/v1/users/{id}", 409, 1, 2),
    }


def test_date_only_range_and_empty_range(run_cli, tiny_db):
    assert sum(r["conflicts"] for r in clusters(run_cli, tiny_db, "--since", "2026-11-20")) == 6
    assert clusters(run_cli, tiny_db, "--since", "2026-11-21") == []
    result = run_cli("clusters", "--db", tiny_db, "--since", "2026-11-21")
    assert result.exit_code == 0 and "no conflicts in this range" in result.stdout


def test_filters_and_limit(run_cli, tiny_db):
    assert summarise(clusters(run_cli, tiny_db, "--method", "POST")) == {
        ("POST", "/api/v1/users", 409, 1, 1)
    }
    assert summarise(clusters(run_cli, tiny_db, "--route", "/api/v1/users/{id}", "--limit", 1)) == {
        ("PUT", "/api/v1/users/{id}", 409, 4, 8)
    }


def test_clusters_table_output(run_cli, tiny_db):
    result = run_cli("clusters", "--db", tiny_db)
    assert result.exit_code == 0
    assert "/api/v1/users/{id}" in result.stdout and "50.00%" in result.stdout  # 4 of 8


# --- where the store is -------------------------------------------------------------------------------


def test_conflictlens_db_environment_variable(run_cli, monkeypatch, tmp_path, small_log):
    target = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("CONFLICTLENS_DB", str(target))
    cli_json(run_cli("ingest", "--json", small_log))
    assert store_counts(target)["events"] == 1
    assert len(clusters_without_db(run_cli)) == 1


def clusters_without_db(run_cli) -> list[dict]:
    return cli_json(run_cli("clusters", "--json"))


def test_local_config_file_db_is_relative_to_the_config(run_cli, tmp_path, small_log):
    (tmp_path / "conflictlens.toml").write_text(
        'db = "data/store.duckdb"\n[ingest]\nkeep_all = true\n'
    )
    (tmp_path / "data").mkdir()
    summary = cli_json(run_cli("ingest", "--json", small_log))
    # keep_all: the 200 is stored as an event too, but it is no conflict
    assert summary["conflicts"] == 1
    assert store_counts(tmp_path / "data" / "store.duckdb")["events"] == 2
    assert not (tmp_path / "conflictlens.duckdb").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("dbx = 1\n", "unknown key 'dbx'"),
        ("db = \n", "not valid TOML"),
        ('[ingest]\nkeep_all = "yes"\n', "ingest.keep_all"),
        ('[[routes]]\npattern = "("\nroute = "/x"\n', "routes[1].pattern"),
        ('[dashboard]\npassword = "s3cret"\n', "dashboard.password: unknown key"),
        ('[dashboard]\npassword_hash = "s3cret"\n', "dashboard.password_hash: expected a hash"),
    ],
)
def test_invalid_config_is_one_line(run_cli, tmp_path, small_log, text, needle):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert_one_line_error(run_cli("ingest", "--config", config, small_log), "bad.toml", needle)


def test_sample_writes_a_log_and_its_ground_truth(run_cli, tmp_path, db_path):
    out = tmp_path / "demo.log"
    truth = cli_json(run_cli("sample", "--lines", 500, "--seed", 1, "--out", out, "--json"))
    assert truth["lines"] == 500
    assert out.read_bytes().count(b"\n") == 500
    assert json.loads(Path(f"{out}.truth.json").read_text())["conflicts"] == truth["conflicts"]
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", out))
    assert (summary["lines"], summary["rejected"], summary["conflicts"]) == (
        500,
        0,
        truth["conflicts"],
    )


# --- timeparse -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20", dt.datetime(2026, 11, 20, tzinfo=dt.UTC)),
        ("2026-11-20T06:00:00Z", dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)),
        ("2026-11-20T06:00:00z", dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)),
        ("2026-11-20T08:00:00+02:00", dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)),
        ("2026-11-20T08:00+02:00", dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)),
        ("2026-11-20T06:00:00", dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)),  # no offset: UTC
        (" 2026-11-20 ", dt.datetime(2026, 11, 20, tzinfo=dt.UTC)),
    ],
)
def test_parse_time_absolute(text, expected):
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == dt.timedelta(0)


NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("24h", dt.timedelta(hours=24)),
        ("7d", dt.timedelta(days=7)),
        ("30m", dt.timedelta(minutes=30)),
        ("45s", dt.timedelta(seconds=45)),
        ("2w", dt.timedelta(weeks=2)),
        ("1h30m", dt.timedelta(minutes=90)),  # the grammar of every duration (rule windows too)
        ("1d12h", dt.timedelta(hours=36)),
    ],
)
def test_parse_time_relative(text, delta):
    assert parse_time(text, now=NOW) == NOW - delta


def test_parse_time_relative_counts_back_from_the_real_clock():
    before = dt.datetime.now(dt.UTC)
    parsed = parse_time("24h")
    after = dt.datetime.now(dt.UTC)
    assert before - dt.timedelta(hours=24) <= parsed <= after - dt.timedelta(hours=24)
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["", "yesterday", "24", "h24", "2026-02-30", "2026-11-20T25:00"])
def test_parse_time_rejects_garbage(text):
    with pytest.raises(ValueError, match="invalid time"):
        parse_time(text)


def test_ingest_help_names_every_registered_format():
    from click.testing import CliRunner

    from conflictlens.cli import cli
    from conflictlens.ingest.formats import FORMATS

    text = " ".join(CliRunner().invoke(cli, ["ingest", "--help"]).output.split()).replace("- ", "-")
    missing = [name for name in FORMATS if name not in text]
    assert not missing, missing


def test_keep_all_counts_conflicts_not_requests(run_cli, tmp_path, extended_log):
    """With keep_all every request is an event; the summary and the source still count the
    conflict-family responses, as the generator's truth does."""
    log, truth = extended_log
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    summary = cli_json(run_cli("ingest", "--json", log))
    assert summary["conflicts"] == truth["conflicts"] < truth["lines"]
    db = tmp_path / "conflictlens.duckdb"
    assert store_counts(db)["events"] == truth["lines"]
    assert query(db, "SELECT conflicts FROM sources") == [(truth["conflicts"],)]
