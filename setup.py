"""The one compiled part: the CLF field scanner (ingest/formats/_scan.c).

It is optional: without a C compiler the install still succeeds and CLF lines are parsed by
their regex alone, with the same results, only more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ingest.formats._scan",
            ["ingest/formats/_scan.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
