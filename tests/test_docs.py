"""The reference in docs/ is generated from the code, and nothing is left undocumented: a new
command without an example, an option without help, an API route without a description, a
format without a description or a config key without one fails here, as does a page that was
not regenerated (`make docs`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _generator()


@pytest.mark.parametrize("page", sorted(generate.PAGES))
def test_the_generated_page_is_up_to_date(page: str) -> None:
    """Rendered in a fresh process, as `make docs` renders it: click keeps a command's help
    option once made, so a command another test invoked on its own would show --help alone."""
    rendered = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--print", page],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    on_disk = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert on_disk == rendered, f"docs/{page} is stale: run make docs"


@pytest.mark.parametrize("page", sorted(generate.PAGES))
def test_nothing_on_the_page_is_undocumented(page: str) -> None:
    _, problems = generate.PAGES[page]
    assert problems() == []


def test_every_command_and_option_is_on_the_cli_page() -> None:
    """Read back from the page, not from the generator's own walk."""
    from conflictlens.cli import cli

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    names = [name for name, _ in generate._commands(cli)]
    assert len(names) > 20
    for name, command in generate._commands(cli):
        assert f"## {name}\n" in text, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.opts[-1] in text, (name, param.opts)


def test_an_option_added_without_help_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from conflictlens.cli import cli

    ingest = cli.get_command(click.Context(cli), "ingest")
    assert ingest is not None
    monkeypatch.setattr(ingest, "params", [*ingest.params, click.Option(["--shiny"])])
    assert generate.cli_problems() == ["option --shiny of `conflictlens ingest` has no help text"]
    on_disk = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert generate.PAGES["cli.md"][0]() != on_disk  # and the page shows it is stale


def test_every_api_route_is_on_the_api_page() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    operations = list(generate._operations(generate.api_schema()))
    assert len(operations) > 15
    for method, path, _ in operations:
        assert f"## `{method} {path}`" in text
