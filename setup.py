"""Build the chunker's native core; everything else is declared in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "chunker._fastcdc",
            sources=["chunker/_fastcdc.c", "chunker/fastcdc_scan.c"],
            include_dirs=["chunker"],
            extra_compile_args=["-O3", "-std=c99"],
        )
    ]
)
