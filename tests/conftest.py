"""Shared fixtures. The stand-in fixtures live in tests/standin_fixtures.py."""
