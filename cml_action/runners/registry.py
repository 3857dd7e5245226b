"""The forge side of a self-hosted runner: mint a one-job registration, watch it come online, remove it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Registration:
    runner_id: str
    name: str
    secret: str = field(repr=False)  # GitHub: the encoded JIT config; GitLab: the runner authentication token
    kind: str = "github-jit"  # or "gitlab-token"


@dataclass(frozen=True)
class RunnerInfo:
    runner_id: str
    name: str
    labels: tuple[str, ...]
    online: bool
    busy: bool = False


class RunnerRegistry(Protocol):
    def register(self, name: str, labels: list[str]) -> Registration:
        """Raise PermissionDenied naming the admin permission the token lacks."""

    def list(self, label: str | None = None) -> list[RunnerInfo]: ...

    def get(self, runner_id: str) -> RunnerInfo | None: ...

    def delete(self, runner_id: str) -> None:
        """Idempotent: a runner that is already gone is fine."""

    def rerun_failed_jobs(self, run_id: str) -> None: ...
