"""Alembic migrations of the Confidant store (package data, run by `store.migrate`)."""
