"""Persistence: schema, engine, migrations, repositories (which return plain dataclasses)."""
