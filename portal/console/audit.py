"""The organisation's audit log (filled in by the audit-log work)."""
