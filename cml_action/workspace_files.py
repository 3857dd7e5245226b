"""Which files may leave the machine: only regular files inside the workspace.

A report is built from paths the user (or a pull request's author) controls, so every path is
resolved before use: absolute paths, `..` escapes, symlinks pointing out and special files (`/proc`,
devices, FIFOs) are refused with a reason the report can show instead of the file.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path


OUTPUT_MARKER = ".cml-action-output"  # in every folder we write a report to: globs and image sources skip it


@dataclass(frozen=True)
class Refused:
    path: str
    reason: str


def check(workspace: Path, user_path: str) -> Path | Refused:
    """Return the resolved path of a safe workspace file, or why it is refused."""
    if not user_path or "\x00" in user_path:
        return Refused(user_path, "empty or invalid path")
    if os.path.isabs(user_path):
        return Refused(user_path, "absolute paths are not published; use a path inside the workspace")
    if ".git" in Path(user_path).parts:
        return Refused(user_path, "inside .git/, which is never read for a report")
    root = workspace.resolve()
    candidate = root / user_path
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return Refused(user_path, "file not found")
    if resolved != root and root not in resolved.parents:
        why = "a symlink pointing outside the workspace" if _has_symlink(root, user_path) else "outside the workspace"
        return Refused(user_path, f"{why}; only workspace files are published")
    try:
        mode = resolved.stat().st_mode
    except OSError:
        return Refused(user_path, "file not readable")
    if not stat.S_ISREG(mode):
        return Refused(user_path, "not a regular file")
    if ".git" in resolved.relative_to(root).parts:
        return Refused(user_path, "inside .git/, which is never read for a report")
    return resolved


def mark_output(folder: Path) -> None:
    """Mark a folder as ours, so that `**/*.png` never picks up a previous report's images."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / OUTPUT_MARKER
    if not marker.exists():
        marker.write_text("cml-action writes reports here; globs of plots and metrics skip this folder.\n")


def in_output(workspace: Path, path: Path) -> bool:
    """Whether a (resolved) workspace file lies in a folder cml-action writes its reports to."""
    root = workspace.resolve()
    for parent in path.parents:
        if (parent / OUTPUT_MARKER).is_file():
            return True
        if parent == root or root not in parent.parents:
            return False
    return False


def _has_symlink(root: Path, user_path: str) -> bool:
    current = root
    for part in Path(user_path).parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


def expand(workspace: Path, patterns: list[str]) -> tuple[list[str], list[str]]:
    """Expand globs relative to the workspace. Returns (workspace-relative matches, patterns that matched nothing).

    Matches keep the order of the patterns and are de-duplicated; literal names are kept even when
    missing so that the caller can report them precisely.
    """
    found: list[str] = []
    unmatched: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern) and not os.path.isabs(pattern):
            matches = sorted(glob.glob(pattern, root_dir=workspace, recursive=True))
            matches = [m for m in matches if (workspace / m).is_file() and ".git" not in Path(m).parts
                       and not in_output(workspace, (workspace / m).resolve())]
            if not matches:
                unmatched.append(pattern)
            found.extend(m for m in matches if m not in found)
        elif pattern not in found:
            found.append(pattern)
    return found, unmatched
