"""Fixtures shared across test modules: the service stand-ins."""

from standins.github.fixture import github_standin  # noqa: F401
from standins.gitlab.fixture import gitlab_standin  # noqa: F401,E402
