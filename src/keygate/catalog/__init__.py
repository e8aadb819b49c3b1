"""Providers as data: one YAML file per app, validated by a typed model."""
