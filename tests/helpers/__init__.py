"""Helpers shared by the tests (imported explicitly, never through conftest)."""
