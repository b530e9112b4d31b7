"""Trial tests for twisted_sslfile; run with ``python -m twisted.trial tests``."""
