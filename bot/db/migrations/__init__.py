"""Alembic migrations of the schema in ``bot/db/models.py`` (applied by ``bot.db.migrate``)."""
