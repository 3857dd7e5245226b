"""Cleanup that keeps going: every failure is one line, collected, and reported together at the end.

Teardown, sweep and a failed launch each touch many resources (VMs, secrets, roles, runners) in several services. One
refusal must not leave the rest behind, and an SDK's own exception (botocore, PyGithub, google-api-core, azure-core,
python-gitlab) must become a sentence the user can act on, never a traceback. The SDKs are not imported here: their
exceptions are read by the attributes they carry, so this module costs nothing on the report path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cml_action.errors import CloudError, CmlError, UserError

T = TypeVar("T")
MAX_LINE = 300


def one_line(exc: BaseException) -> str:
    """The most useful single line an exception of any of our SDKs can give."""
    if isinstance(exc, CmlError):
        text = str(exc)
    else:
        text = _sdk_text(exc) or f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def _sdk_text(exc: BaseException) -> str:
    for reader in (_aws, _github, _gitlab, _google, _azure):
        text = reader(exc)
        if text:
            return text
    return ""


def _aws(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):  # botocore ClientError
        error = response["Error"]
        return f"AWS {error.get('Code', '')}: {error.get('Message', '')}".strip(" :")
    return ""


def _github(exc: BaseException) -> str:
    status, data = getattr(exc, "status", None), getattr(exc, "data", None)
    if isinstance(status, int) and data is not None:  # PyGithub GithubException
        message = data.get("message", "") if isinstance(data, dict) else str(data)
        return f"GitHub answered {status} {message}".strip()
    return ""


def _gitlab(exc: BaseException) -> str:
    code = getattr(exc, "response_code", None)
    if code is not None and hasattr(exc, "error_message"):  # python-gitlab GitlabError
        return f"GitLab answered {code} {getattr(exc, 'error_message', '')}".strip()
    return ""


def _google(exc: BaseException) -> str:
    if hasattr(exc, "code") and hasattr(exc, "message") and hasattr(exc, "grpc_status_code"):  # google-api-core
        return f"Google Cloud answered {getattr(exc, 'code', '')} {getattr(exc, 'message', '')}".strip()
    return ""


def _azure(exc: BaseException) -> str:
    if hasattr(exc, "status_code") and hasattr(exc, "reason") and hasattr(exc, "message"):  # azure-core
        lines = str(getattr(exc, "message", "") or exc).strip().splitlines()
        return f"Azure answered {getattr(exc, 'status_code', '')} {lines[0] if lines else ''}".strip()
    return ""


@dataclass
class Failures:
    """The failures of one cleanup, in the order they happened; `attempt` runs a step and records its failure."""

    lines: list[str] = field(default_factory=list)

    def attempt(self, what: str, step: Callable[[], T]) -> tuple[bool, T | None]:
        try:
            return True, step()
        except UserError:
            raise  # bad input or missing credentials: every other step would fail the same way; exit 2 now
        except PartialListing as exc:  # what was listed is still worked on; the rest is reported
            self.lines.append(f"{what}: {one_line(exc)}")
            return True, exc.found  # type: ignore[return-value]
        except Exception as exc:  # noqa: BLE001 - keep going: every resource gets its try, all failures reported
            self.lines.append(f"{what}: {one_line(exc)}")
            return False, None

    def __bool__(self) -> bool:
        return bool(self.lines)


class CleanupIncomplete(CloudError):
    """Some resources could not be removed. The failures are printed one per line before the one-line summary."""

    def __init__(self, command: str, failures: list[str]) -> None:
        self.failures = list(failures)
        super().__init__(f"{command} incomplete: {len(self.failures)} step(s) failed (listed above); run it again, "
                         "or let runner-sweep finish the job")


class PartialListing(CloudError):
    """A provider's `find` that listed the VMs but not everything else (leftover secrets, accounts): `found` holds what
    it did list, so the caller can still delete those and report the rest."""

    def __init__(self, message: str, found: list) -> None:
        super().__init__(message)
        self.found = list(found)
