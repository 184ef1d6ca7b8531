"""Integration tests: real services, real processes."""
