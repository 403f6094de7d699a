"""The Helpdesk (SPEC §5): Contact Us, Resend Admin User ID, the staff queue."""
