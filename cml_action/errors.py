"""Errors that reach the user as one line and a chosen exit code, never a traceback."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # training failed, a quality gate failed, a runner could not be launched
EXIT_USAGE = 2  # bad input: the user has something to fix


class CmlError(Exception):
    """Base class: anything raised as a CmlError is printed as one line and exits with `exit_code`."""

    exit_code = EXIT_FAILED


class UserError(CmlError):
    """Bad input (missing file, malformed JSON, unknown target...): exit 2."""

    exit_code = EXIT_USAGE


class ForgeError(CmlError):
    """The forge (GitHub, GitLab) refused or failed a request in a way retries cannot fix."""


class TokenRefused(ForgeError):
    """The forge does not accept the token at all (401): no retry can help."""


class PermissionDenied(ForgeError):
    """The token lacks a permission; `permission` names what to grant (e.g. `contents: write`)."""

    def __init__(self, message: str, permission: str = "") -> None:
        super().__init__(message)
        self.permission = permission


class CloudError(CmlError):
    """A cloud call failed; see clouds.base.CapacityError for the retryable kinds."""
