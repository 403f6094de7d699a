"""Firm offboarding: export everything held about a firm (``portal org export``), then erase it
(``portal org delete``); and ``portal users find`` across firms."""
