"""The Helpdesk (docs/rules.md §5): Contact Us, Resend Admin User ID, the staff queue."""
