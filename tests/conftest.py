"""Fixtures shared across test modules: the service stand-ins."""

from standins.github.fixture import github_standin  # noqa: F401
