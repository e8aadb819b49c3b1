"""Keygate: a self-hosted API gateway with managed OAuth."""

__version__ = "0.1.0"
