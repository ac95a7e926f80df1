"""Build the C core; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bump_global._core",
            sources=["bump_global/_core.c"],
            extra_compile_args=["-O2"] if __import__("sys").platform != "win32" else ["/O2"],
        )
    ]
)
