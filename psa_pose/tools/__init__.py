"""Command-line tools; the scripts in ``scripts/`` are thin wrappers around these."""
