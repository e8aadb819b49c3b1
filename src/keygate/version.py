"""The package version, in a module of its own so the SDK reads it without the package root."""

__version__ = "0.1.0"
