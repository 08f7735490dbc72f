"""Alembic revisions, one file per schema change, named for what it does."""
