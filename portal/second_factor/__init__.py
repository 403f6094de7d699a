"""The second factor (docs/rules.md R10): TOTP, passkeys, recovery codes, resets."""
