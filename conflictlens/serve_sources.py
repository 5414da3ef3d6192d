"""From the config's [[sources]] to the followers serve runs."""

from __future__ import annotations

import duckdb

from conflictlens.config import Config
from conflictlens.ingest.formats import FormatError
from conflictlens.ingest.tail import Follower, SourceSpec


def configured_specs(config: Config) -> list[SourceSpec]:
    """The config's ``[[sources]]`` as follower specs (serve's and the agent's).

    Raises ValueError naming the bad source when one is invalid.
    """
    specs = []
    for number, source in enumerate(config.sources, start=1):
        try:
            specs.append(
                SourceSpec(
                    source.path,
                    source.format,
                    source.log_format,
                    source.start,
                    source.service,
                    options=config.ingest,
                )
            )
        except (ValueError, FormatError) as exc:
            raise ValueError(f"sources[{number}] ({source.path}): {exc}") from None
    return specs


def followers_for(config: Config, con: duckdb.DuckDBPyConnection) -> list[Follower]:
    """One follower for all configured sources, writing through serve's own connection.

    Raises ValueError naming the bad source when one is invalid.
    """
    specs = configured_specs(config)
    return [Follower(con, specs, flush_ms=config.serve.flush_ms)] if specs else []
