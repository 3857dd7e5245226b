"""Git plumbing for baselines: which ref to compare with, and file contents at that ref.

Every git call carries `safe.directory=<workspace>` in command scope, so a workspace mounted into the
container with another owner is trusted without touching anyone's global configuration.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from cml_action.ci.context import CIContext


def trusted_env(workspace: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that makes git trust exactly this workspace (git's command-scope config via env)."""
    env = dict(os.environ if base is None else base)
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    env[f"GIT_CONFIG_KEY_{count}"] = "safe.directory"
    env[f"GIT_CONFIG_VALUE_{count}"] = str(workspace.resolve())
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    return env


def git(workspace: Path, *args: str, check: bool = False, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args],
        cwd=workspace,
        env=trusted_env(workspace),
        capture_output=True,
        text=not binary,
        check=check,
    )


def is_repo(workspace: Path) -> bool:
    return git(workspace, "rev-parse", "--git-dir").returncode == 0


def head_sha(workspace: Path) -> str:
    out = git(workspace, "rev-parse", "HEAD")
    return out.stdout.strip() if out.returncode == 0 else ""


def current_branch(workspace: Path) -> str:
    out = git(workspace, "rev-parse", "--abbrev-ref", "HEAD")
    name = out.stdout.strip() if out.returncode == 0 else ""
    return "" if name == "HEAD" else name


@dataclass(frozen=True)
class Baseline:
    ref: str  # what the user sees ("main", "origin/main", a sha)
    sha: str  # resolved commit
    label: str  # short name for table headers


def _verify(workspace: Path, ref: str) -> str:
    out = git(workspace, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return out.stdout.strip() if out.returncode == 0 else ""


def _fetch(workspace: Path, what: str, dest: str | None = None) -> None:
    """Shallow checkouts (actions/checkout's default) lack the base branch: fetch just its tip."""
    refspec = f"+{what}:{dest}" if dest else what
    git(workspace, "fetch", "--no-tags", "--depth=1", "origin", refspec)


Candidate = tuple[str, "str | None", "str | None"]  # (ref, what to fetch when missing, fetch into)


def _remote(branch: str) -> list[Candidate]:
    return [(f"origin/{branch}", f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"), (branch, None, None)]


def _candidates(option: str, ctx: CIContext, workspace: Path) -> list[Candidate]:
    """The refs to try, best first, by the rules the `baseline` option documents."""
    if option:
        return [(option, option, None), (f"origin/{option}", f"refs/heads/{option}", f"refs/remotes/origin/{option}")]
    if ctx.pr_number and ctx.base_ref:
        return _remote(ctx.base_ref)
    branch = ctx.ref_name or current_branch(workspace)
    default = ctx.default_branch or _guess_default_branch(workspace)
    if default and branch and branch != default:
        return _remote(default)
    if ctx.before_sha:
        # a push to the default branch: comparing with itself says nothing, so compare with the previous tip
        return [(ctx.before_sha, ctx.before_sha, None)]
    if ctx.kind != "local" and ctx.sha:
        return [(f"{ctx.sha}~1", None, None)]
    if _dirty(workspace) or not _verify(workspace, "HEAD~1"):
        return [("HEAD", None, None)]  # local: the working tree's changes vs the last commit
    return [("HEAD~1", None, None)]  # a clean checkout: the last commit vs the one before


def _label(ref: str, sha: str) -> str:
    label = ref.removeprefix("origin/")
    if (len(label) == 40 and all(c in "0123456789abcdef" for c in label)) or label.startswith("HEAD"):
        return sha[:7]  # "HEAD | head" says nothing; the commit does
    return label


def resolve_baseline(option: str, ctx: CIContext, workspace: Path) -> tuple[Baseline | None, str]:
    """Pick the ref to compare with. Returns (baseline or None, warning text or "")."""
    if option.strip().lower() == "none" or not is_repo(workspace):
        return None, ""
    candidates = _candidates(option, ctx, workspace)
    for ref, fetch_what, fetch_into in candidates:
        sha = _verify(workspace, ref)
        if not sha and fetch_what:
            _fetch(workspace, fetch_what, fetch_into)
            sha = _verify(workspace, ref)
        if sha:
            return Baseline(ref=ref, sha=sha, label=_label(ref, sha)), ""
    wanted = candidates[0][0] if candidates else option
    if wanted in ("HEAD", "HEAD~1"):
        return None, ""  # a local folder without commits: nothing to compare with, nothing to warn about
    return None, f"baseline {wanted!r} was not found (is the checkout shallow without access to origin?); no comparison"


def _dirty(workspace: Path) -> bool:
    out = git(workspace, "status", "--porcelain", "--untracked-files=no")
    return out.returncode == 0 and bool(out.stdout.strip())


def resolve_baselines(option: str, ctx: CIContext, workspace: Path) -> tuple[list[Baseline], list[str]]:
    """`baseline` may name several refs (`main v1.2.0`, or comma separated), as `dvc plots diff` takes
    several revisions: the first is the one the summary and the gates compare with. Returns the refs found,
    in order, and a warning for each one not found."""
    refs = [r for r in option.replace(",", " ").split() if r]
    if len(refs) <= 1:
        baseline, warning = resolve_baseline(refs[0] if refs else "", ctx, workspace)
        return ([baseline] if baseline else []), ([warning] if warning else [])
    found: list[Baseline] = []
    warnings: list[str] = []
    for ref in refs:
        baseline, warning = resolve_baseline(ref, ctx, workspace)
        if baseline is not None and baseline.sha not in {b.sha for b in found}:
            found.append(baseline)
        if warning:
            warnings.append(warning)
    return found, warnings


def _guess_default_branch(workspace: Path) -> str:
    out = git(workspace, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip().removeprefix("origin/")
    for name in ("main", "master"):
        if _verify(workspace, name):
            return name
    return ""


def show(workspace: Path, sha: str, rel_path: str) -> bytes | None:
    """Contents of a workspace-relative file at a commit, or None when it did not exist there."""
    out = git(workspace, "show", f"{sha}:./{rel_path}", binary=True)
    return out.stdout if out.returncode == 0 else None


class Blobs:
    """File contents at commits through one `git cat-file --batch` process: a report reads dozens of files at
    two or three revisions, and starting a `git show` for each costs more than the reading."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._proc: subprocess.Popen | None = None

    def show(self, sha: str, rel_path: str) -> bytes | None:
        if "\n" in sha or "\n" in rel_path:
            return show(self.workspace, sha, rel_path)
        try:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{sha}:./{rel_path}\n".encode())
            proc.stdin.flush()
            parts = proc.stdout.readline().split()
            if len(parts) != 3:
                return None  # "<name> missing" (or ambiguous): not there at that commit
            data = proc.stdout.read(int(parts[2]))
            proc.stdout.read(1)
            return data if parts[1] == b"blob" else None
        except (OSError, ValueError):
            self.close()
            return show(self.workspace, sha, rel_path)

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.workspace,
                                          env=trusted_env(self.workspace), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self._proc

    def close(self) -> None:
        if self._proc is not None:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> Blobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def changed_files(workspace: Path, sha: str) -> list[str]:
    """Workspace-relative files that differ between the baseline commit and the working tree."""
    out = git(workspace, "diff", "--name-only", "--relative", sha, "--")
    return out.stdout.split() if out.returncode == 0 else []
