"""The one compiled part, in one extension module: the field scanners for CLF lines
(ingest/formats/_scan.c) and JSON lines (ingest/formats/_json.c), ISO-8601 timestamps
(ingest/formats/_times.c), route templating (ingest/_routes.c) and the walk over OTLP log
requests (ingest/_otlp.c).

It is optional: without a C compiler the install still succeeds and lines are parsed by the
regexes and DuckDB alone, with the same results, only more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "conflictlens.ingest.formats._scan",
            [
                "ingest/formats/_scan.c",
                "ingest/formats/_json.c",
                "ingest/formats/_times.c",
                "ingest/_routes.c",
                "ingest/_otlp.c",
            ],
            depends=["ingest/formats/_views.h"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
