"""conflictlens: the composition layer (command line, config, serve and its API).

Importing it changes nothing: settings for the process (the OpenBLAS threads) are made by the
command's entry point, conflictlens.entry.
"""

__version__ = "0.1.0"
