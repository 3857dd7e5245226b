"""What the publisher needs from a forge, and nothing more.

GitHub and GitLab differ in how images are stored and whether commit comments can be edited; the
publisher only sees this interface, so `target` semantics and the sticky-comment rule are identical.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

from cml_action.errors import UserError

TargetKind = Literal["auto", "pr", "commit", "issue", "none"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    number: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Target":
        value = (text or "auto").strip().lower()
        if value in ("auto", "pr", "commit", "none"):
            return cls(value)  # type: ignore[arg-type]
        match = re.fullmatch(r"(?:issue|pr):(\d+)", value)
        if match:
            kind = "issue" if value.startswith("issue") else "pr"
            return cls(kind, int(match.group(1)))  # type: ignore[arg-type]
        raise UserError(f"unknown target {text!r}: use auto, pr, pr:N, commit, issue:N or none")


@dataclass(frozen=True)
class Destination:
    """A resolved place to post: a pull/merge request, an issue, or a commit."""

    kind: Literal["pr", "issue", "commit"]
    number: int | None = None
    sha: str = ""

    def describe(self) -> str:
        return f"commit {self.sha[:7]}" if self.kind == "commit" else f"{self.kind} #{self.number}"


@dataclass(frozen=True)
class Posted:
    url: str
    updated: bool  # True when an existing sticky comment was edited


@dataclass(frozen=True)
class Image:
    """A workspace file to publish; `rel` is its path relative to the workspace (already checked safe)."""

    path: Path
    rel: str

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def sticky_marker(title: str) -> str:
    """Hidden HTML comment that finds our previous report; keyed by title so matrix jobs keep their own."""
    key = hashlib.sha256(title.strip().encode()).hexdigest()[:16]
    return f"<!-- cml-action:report:{key} -->"


def resolve_target(target: Target, sha: str, pr_number: int | None, open_for: "Callable[[str], list[int]]",
                   review: str = "pull request") -> list[Destination]:
    """`target` semantics shared by every forge: `auto` = the PR/MR of the event, else the open ones whose head is
    `sha`, else a commit comment; `pr` insists on one; `none` posts nothing."""
    if target.kind == "none":
        return []
    if target.kind == "issue":
        return [Destination("issue", target.number)]
    if target.kind == "pr" and target.number:
        return [Destination("pr", target.number)]
    if target.kind == "commit":
        return [Destination("commit", sha=sha)]
    numbers = [pr_number] if pr_number else open_for(sha)
    if numbers:
        return [Destination("pr", n) for n in numbers]
    if target.kind == "pr":
        raise UserError(f"target pr: no open {review} has commit {sha[:7]} as its head")
    return [Destination("commit", sha=sha)]


class Forge(Protocol):
    name: str
    body_limit: int  # characters a comment may hold

    def resolve(self, target: Target) -> list[Destination]:
        """Turn `auto`/`pr`/... into concrete destinations; [] for `none`. Raises UserError when impossible."""

    def upload_images(self, images: list[Image]) -> dict[str, str]:
        """Publish images, return rel path -> URL usable in markdown. Raises PermissionDenied when not allowed."""

    def post(self, dest: Destination, body: str, marker: str, update: bool) -> Posted:
        """Create or (update=True and a comment with `marker` exists) edit the comment; never posts twice."""

    def create_check(self, sha: str, name: str, summary: str, conclusion: str) -> str:
        """Create a finished check/status for `sha`; return its URL, or "" where the forge has none."""
