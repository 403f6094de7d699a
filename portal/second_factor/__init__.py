"""Second factors (SPEC R10)."""
