"""Backup and restore of the whole database: SQLite with its online backup API, PostgreSQL
with ``pg_dump`` / ``pg_restore`` in custom format.  Files are 0600 (they hold password
hashes).  The CLI (``portal backup``, ``portal restore``) is in ``portal.backup.commands``."""
