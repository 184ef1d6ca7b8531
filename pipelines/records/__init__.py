"""Typed run records, manifest and validation report; see each module."""
