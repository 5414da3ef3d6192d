"""The ``conflictlens`` command's entry point: the process's settings, then the command line."""

from __future__ import annotations

import os
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    # numpy's OpenBLAS starts a thread per core that spins after each call; nothing here does
    # linear algebra, and on two cores the spinning took CPU from the parsing threads (2-3 % of
    # an import). Set before numpy is first imported (conflictlens.cli imports it); an explicit
    # setting is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from conflictlens.cli import main as run

    run(argv)
