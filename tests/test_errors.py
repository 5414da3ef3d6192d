"""One error tree: every exception the project defines derives from ConflictlensError, and the
two places that meet the user catch that root. The HTTP API answers any of them with its
first line (400, or the status its class declares); the CLI prints that line and exits 1."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import pytest

from conflictlens._errors import ConflictlensError, InputError, StoreError, first_line
from conflictlens.analysis.reports.archive import ArchiveError
from conflictlens.api import create_app
from conflictlens.cli_support import run
from conflictlens.store import connect
from tests.test_alerts_serve import serving

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("conflictlens", "store", "ingest", "analysis", "notify", "dashboard", "sample_logs")
# Scripts Streamlit runs, not modules: importing one would run the app.
SCRIPTS = {"conflictlens.dashboard.app", "conflictlens.__main__"}
CLI = [sys.executable, "-m", "conflictlens"]


def defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined at the top of a project module, by qualified name: the
    modules are read for class statements, then imported to see which are exceptions."""
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not path.resolve().is_relative_to(ROOT / package):
                continue  # conflictlens/store and the like: the layer's own folder has them
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if package != "conflictlens":  # the layers are installed under conflictlens
                module = f"conflictlens.{module}"
            module = module.removesuffix(".__init__")
            tree = ast.parse(path.read_text(encoding="utf-8"))
            classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
            if not classes or module in SCRIPTS or ".app_pages." in module:
                continue
            loaded = importlib.import_module(module)
            for name in classes:
                value = getattr(loaded, name)
                if isinstance(value, type) and issubclass(value, BaseException):
                    found[f"{module}.{name}"] = value
    return found


def test_every_exception_of_the_project_derives_from_the_root() -> None:
    exceptions = defined_exceptions()
    # The walk must find them: the errors of the store, ingest, analysis, notify, serve, CLI.
    for known in (
        "conflictlens.store.schema.NewerSchema",
        "conflictlens.ingest.formats.clf.FormatError",
        "conflictlens.ingest.tail.handle.NotRegularFile",
        "conflictlens.analysis.reports.archive.ArchiveError",
        "conflictlens.notify.send.DeliveryError",
        "conflictlens.cli_support.UserError",
        "conflictlens.dashboard.data.DataError",
    ):
        assert known in exceptions, known
    assert len(exceptions) >= 20
    strays = sorted(
        name for name, cls in exceptions.items() if not issubclass(cls, ConflictlensError)
    )
    assert not strays


def test_the_old_names_and_their_builtin_bases_stay() -> None:
    """Callers that catch them as ValueError or OSError still do."""
    from conflictlens.analysis import AnalysisError
    from conflictlens.config import ConfigError
    from conflictlens.ingest.formats import FormatError, UnknownFormat
    from conflictlens.ingest.identity import NotALogFile
    from conflictlens.store import DatabaseLocked

    assert issubclass(UnknownFormat, FormatError) and issubclass(FormatError, ValueError)
    assert issubclass(ConfigError, ValueError) and issubclass(AnalysisError, ValueError)
    assert issubclass(NotALogFile, OSError) and issubclass(NotALogFile, InputError)
    assert issubclass(DatabaseLocked, StoreError)
    assert NotALogFile("x: a device").args == ("x: a device",)


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("one line", "one line"),
        ("first\nsecond\nthird", "first"),
        ("\n  \nafter blank lines\nmore", "after blank lines"),
        ("", "InputError"),
        ("  \n\t\n", "InputError"),
    ],
)
def test_first_line(message: str, line: str) -> None:
    assert first_line(InputError(message)) == line


def test_first_line_of_a_builtin_error() -> None:
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("bad\nworse")) == "bad"


def answer(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_api_answers_a_project_error_with_its_first_line(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with closing(connect(db)) as con:
        app = create_app(con.cursor, db_path=str(db))

        def multi_line() -> None:
            raise InputError("the first line\nthe second line\nthe third line")

        def unusable_archive() -> None:
            raise ArchiveError("reports: the directory is not writable\ndetail")

        app.add_api_route("/test/multi-line", multi_line)
        app.add_api_route("/test/archive", unusable_archive)
        with serving(app) as url:
            # raised deep inside the catalog's time parsing, not by the endpoint
            status, body = answer(f"{url}/api/queries/clusters?since=yesterday-ish")
            assert status == 400
            assert body == {"detail": body["detail"].splitlines()[0]}
            assert body["detail"].startswith("invalid time 'yesterday-ish': use an ISO-8601")
            # an option of the wrong type: a project error at the API's edge
            status, body = answer(f"{url}/api/queries/clusters?limit=many")
            assert (status, body) == (
                400,
                {"detail": "invalid literal for int() with base 10: 'many'"},
            )
            assert answer(f"{url}/test/multi-line") == (400, {"detail": "the first line"})
            # a class that declares its status is answered with it
            assert answer(f"{url}/test/archive") == (
                500,
                {"detail": "reports: the directory is not writable"},
            )
            # an error that is no project's stays the server's own 404
            status, _ = answer(f"{url}/api/queries/no-such-query")
            assert status == 404


def cases(folder: Path) -> dict[str, tuple[list[str], str]]:
    """A store, a config and an input error: the arguments, and what the line must say."""
    missing = folder / "missing.duckdb"
    config = folder / "bad.toml"
    config.write_text("[serve\nport = 1\n")
    log = folder / "access.log"
    log.write_text("")
    db = str(folder / "t.duckdb")
    return {
        "store": (["clusters", "--db", str(missing)], f"no database at {missing}"),
        "config": (["clusters", "--config", str(config)], f"{config}: not valid TOML"),
        "input": (["ingest", "--db", db, "--log-format", "no vars", str(log)], "no %directives"),
    }


def assert_one_line(status: int | None, stderr: str, needle: str) -> None:
    assert status == 1, stderr
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("Error: ") and needle in line, line


@pytest.mark.parametrize("kind", ["store", "config", "input"])
def test_the_cli_says_a_project_error_in_one_line(tmp_path: Path, kind: str) -> None:
    """Through the real entry point, in a process of its own."""
    args, needle = cases(tmp_path)[kind]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
    assert_one_line(done.returncode, done.stderr, needle)


@pytest.mark.parametrize("kind", ["store", "config", "input"])
def test_each_command_says_a_project_error_in_one_line(
    run_cli: Any, tmp_path: Path, kind: str
) -> None:
    """The command itself (friendly_errors), without the entry point around it."""
    args, needle = cases(tmp_path)[kind]
    result = run_cli(*args)
    assert isinstance(result.exception, SystemExit), result.exception
    assert_one_line(result.exit_code, result.stderr, needle)


def test_the_entry_point_catches_the_root_a_command_let_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A project error no command turned into a UserError is still one line and status 1;
    any other exception is a bug, status 2."""

    @click.command()
    @click.argument("kind")
    def command(kind: str) -> None:
        if kind == "project":
            raise StoreError("the store is unwell\nwith details")
        raise RuntimeError("a bug\nits details")

    with pytest.raises(SystemExit) as done:
        run(command, ["project"])
    assert done.value.code == 1
    assert capsys.readouterr().err == "Error: the store is unwell\n"
    with pytest.raises(SystemExit) as done:
        run(command, ["bug"])
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith("Error: internal error (RuntimeError: a bug); ")
