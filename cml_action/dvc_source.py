"""DVC projects: what to report comes from DVC's own declarations; the values equal `dvc metrics diff` /
`dvc params diff`, computed without DVC's machinery on the hot path.

Declarations (metrics, params files, plots with their options) are read through DVC's Python API, so every
dvc.yaml feature (wdir, templating, foreach) is interpreted by DVC itself. The baseline values are read the
way DVC reads them at a revision, directly: a git-tracked file from git, a DVC-tracked output through the
md5 that revision's dvc.lock records, out of the local cache (falling back to dvc.api.read, which can fetch
from the remote). That is exact and many times faster than opening DVC's repo at two revisions.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cml_action.errors import UserError
from cml_action.gitrefs import show
from cml_action.metrics import MetricRow, Value, load_values, rows_for

PLOT_KEYS = ("x", "y", "title", "x_label", "y_label", "template")


@dataclass(frozen=True)
class Declared:
    metrics: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    plots: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def is_dvc_project(workspace: Path) -> bool:
    return (workspace / "dvc.yaml").is_file() and (workspace / ".dvc").is_dir() and \
        importlib.util.find_spec("dvc") is not None


def _repo(workspace: Path) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        return Repo(str(workspace))
    except DvcException as exc:
        raise UserError(f"DVC cannot open {workspace.name}: {str(exc).splitlines()[0]}") from None


def _rel(workspace: Path, path: str) -> str:
    return Path(path).resolve().relative_to(workspace.resolve()).as_posix() if Path(path).is_absolute() else path


def declared(workspace: Path) -> Declared:
    from dvc.exceptions import DvcException

    repo = _repo(workspace)
    try:
        metrics, params, plots = [], [], []
        for stage in repo.index.stages:
            for out in stage.metrics:
                metrics.append(_rel(workspace, out.fs_path))
            for dep in stage.params:
                params.append(_rel(workspace, dep.fs_path))
            for out in stage.outs:
                if out.plot:
                    options = out.plot if isinstance(out.plot, dict) else {}
                    plots.append((_rel(workspace, out.fs_path),
                                  {k: ",".join(v) if isinstance(v, list) else str(v)
                                   for k, v in options.items() if k in PLOT_KEYS}))
    except DvcException as exc:
        raise UserError(f"DVC cannot read dvc.yaml: {str(exc).splitlines()[0]}") from None
    finally:
        repo.close()
    unique = lambda items: list(dict.fromkeys(items))  # noqa: E731 - keep declaration order
    return Declared(unique(metrics), unique(params or ["params.yaml"]), plots)


def _lock_md5(workspace: Path, sha: str, rel: str) -> str | None:
    raw = show(workspace, sha, "dvc.lock")
    if raw is None:
        return None
    lock = yaml.safe_load(raw) or {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if out.get("path") == rel and out.get("md5"):
                return str(out["md5"])
    return None


def _at_revision(workspace: Path, sha: str, rel: str) -> bytes | None:
    raw = show(workspace, sha, rel)
    if raw is not None:
        return raw
    md5 = _lock_md5(workspace, sha, rel)
    if md5 is None:
        return None
    for cache in (workspace / ".dvc" / "cache" / "files" / "md5", workspace / ".dvc" / "cache"):
        candidate = cache / md5[:2] / md5[2:]
        if candidate.is_file():
            return candidate.read_bytes()
    try:
        import dvc.api

        return dvc.api.read(rel, repo=str(workspace), rev=sha, mode="rb")
    except Exception:  # noqa: BLE001 - a baseline that cannot be found is simply absent
        return None


def _rows(workspace: Path, files: list[str], baseline_sha: str | None) -> list[MetricRow]:
    head: dict[str, dict[str, Value]] = {}
    base: dict[str, dict[str, Value]] = {}
    for rel in files:
        path = workspace / rel
        if path.is_file():
            head[rel] = load_values(path, rel)
        if baseline_sha:
            raw = _at_revision(workspace, baseline_sha, rel)
            if raw is not None:
                try:
                    base[rel] = load_values(raw, rel)
                except UserError:
                    pass
    return rows_for(files, head, base)


def metric_rows(workspace: Path, baseline_sha: str | None, found: Declared | None = None) -> list[MetricRow]:
    return _rows(workspace, (found or declared(workspace)).metrics, baseline_sha)


def param_rows(workspace: Path, baseline_sha: str | None, found: Declared | None = None) -> list[MetricRow]:
    return _rows(workspace, (found or declared(workspace)).params, baseline_sha)


def _run(workspace: Path, what: str, action: Any) -> None:
    from dvc.exceptions import DvcException

    repo = _repo(workspace)
    try:
        action(repo)
    except DvcException as exc:
        raise UserError(f"dvc {what} failed: {str(exc).splitlines()[0]}") from None
    finally:
        repo.close()


def pull(workspace: Path) -> None:
    _run(workspace, "pull", lambda repo: repo.pull())


def repro(workspace: Path) -> None:
    _run(workspace, "repro", lambda repo: repo.reproduce())


def push(workspace: Path) -> None:
    _run(workspace, "push", lambda repo: repo.push())
