"""Alembic migrations of the SQL metadata store (a package so that it ships with
the wheel; run by :mod:`tessera.meta.sql.migrate`)."""
