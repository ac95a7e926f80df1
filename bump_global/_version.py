"""The version of bump_global: one place, read by the package, the CLI and the build."""

__version__ = "0.1.0"
