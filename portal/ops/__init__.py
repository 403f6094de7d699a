"""Operations: health and readiness probes, Prometheus metrics (``views``, ``readiness``,
``metrics``, ``figures``); the log format is ``portal.logs``."""
