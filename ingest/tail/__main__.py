"""``python -m conflictlens.ingest.tail --db PATH --source GLOB``: see ingest/tail/cli.py."""

import sys

from conflictlens.ingest.tail.cli import main

sys.exit(main())
