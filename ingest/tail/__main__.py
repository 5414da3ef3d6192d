"""``python -m ingest.tail --db PATH --source GLOB``: see ingest/tail/cli.py."""

import sys

from ingest.tail.cli import main

sys.exit(main())
