"""conflictlens: the composition layer (command line, config, and later serve)."""

import os

# numpy's OpenBLAS starts a thread per core that spins after each call; nothing here does
# linear algebra, and on two cores the spinning took CPU from the parsing threads (2-3 % of
# an import). Set before numpy is first imported; an explicit setting is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
