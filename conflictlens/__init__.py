"""conflictlens: the composition layer (command line, config, and later serve)."""

__version__ = "0.1.0"
