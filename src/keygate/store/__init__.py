"""Persistence: schema, migrations and repositories."""
