"""DVC's declarations read from plain dvc.yaml files, without importing DVC.

Importing DVC and building its index costs about a second, more than the rest of a report; a dvc.yaml without
templating (`vars`, `${...}`, `foreach`, `matrix`) says what it declares in plain YAML, and the rules DVC
applies to it are few: paths relative to the dvc.yaml's folder and the stage's `wdir`, `params.yaml` as the
default params file, directories standing for their files. Anything beyond that (templating, a .dvcignore,
a lock file DVC would refuse, YAML DVC cannot parse) returns None, and DVC itself is asked. The tests check
that both ways give the same declarations on every project shape they build.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from cml_action.gitrefs import git
from cml_action.sources.dvc import (
    DEFAULT_PARAMS,
    Declared,
    Locked,
    _declared,
    _expand,
    _file_plot,
    _posix,
    _top_level_plots,
)

TOP_KEYS = {"stages", "metrics", "params", "plots", "artifacts", "datasets"}
TEMPLATING = ("foreach", "matrix", "do", "vars")
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _dvc_files(workspace: Path) -> list[str] | None:
    """Every dvc.yaml of the project, root first then by folder, as DVC's index walks them."""
    out = git(workspace, "ls-files", "--cached", "--others", "--exclude-standard", "--", "dvc.yaml", "*/dvc.yaml")
    if out.returncode != 0:
        return None
    files = sorted(set(out.stdout.split()), key=lambda p: (p.count("/"), p))
    return [f for f in files if (workspace / f).is_file()] or None


def _load(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "${" in text:
        return None
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - the C-accelerated *safe* loader
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _plain(data: dict[str, Any]) -> bool:
    if not set(data) <= TOP_KEYS:
        return False
    stages = data.get("stages") or {}
    return isinstance(stages, dict) and all(isinstance(s, dict) and not any(k in s for k in TEMPLATING)
                                            for s in stages.values())


def _entries(items: Any) -> list[tuple[str, dict[str, Any]]]:
    """A dvc.yaml list (`- path` or `- path: {props}`) as (path, props)."""
    out = []
    for item in items or []:
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, dict):
            out.extend((str(k), v if isinstance(v, dict) else {}) for k, v in item.items())
    return out


def _join(*parts: str) -> str:
    return _posix(os.path.normpath(os.path.join(*parts)))


class _Reader:
    """Declarations accumulated over the project's dvc.yaml files, in DVC's order."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.metrics: list[str] = []
        self.params: list[tuple[str, list[str]]] = []
        self.plots: list = []
        self.outputs: dict[str, Locked] = {}
        self.top_metrics: list[str] = []
        self.top_params: list[tuple[str, list[str]]] = []
        self.top_plots: dict[str, list[Any]] = {}

    def stage(self, dvcfile: str, name: str, stage: dict[str, Any]) -> None:
        base = os.path.dirname(dvcfile)
        wdir = _join(base, str(stage.get("wdir") or "."))
        lockfile = _join(base, "dvc.lock")
        for key in ("outs", "metrics", "plots"):
            for path, props in _entries(stage.get(key)):
                rel = _join(wdir, path)
                self.outputs[rel] = Locked(lockfile, name, _posix(path))
                if key == "metrics":
                    self.metrics.extend(_expand(self.workspace, rel))
                elif key == "plots":
                    self.plots.extend(_file_plot(p, props) for p in _expand(self.workspace, rel))
        for item in stage.get("params") or []:
            if isinstance(item, str):
                self.params.append((_join(wdir, DEFAULT_PARAMS), [item]))
            elif isinstance(item, dict):
                self.params.extend((_join(wdir, str(f)), [str(k) for k in (keys or [])]) for f, keys in item.items())

    def top_level(self, dvcfile: str, data: dict[str, Any]) -> None:
        base = os.path.dirname(dvcfile)
        for path, _ in _entries(data.get("metrics")):
            self.top_metrics.extend(_expand(self.workspace, _join(base, path)))
        self.top_params.extend((_join(base, path), []) for path, _ in _entries(data.get("params")))
        if data.get("plots"):
            self.top_plots[str(self.workspace / dvcfile)] = list(data["plots"])

    def declared(self) -> Declared:
        plots = self.plots + _top_level_plots(self.workspace, str(self.workspace), self.top_plots)
        return _declared(self.metrics + self.top_metrics, self.params + self.top_params, plots, self.outputs)


def read_plain(workspace: Path, *, any_lock: bool = False) -> Declared | None:
    """The project's declarations, or None when DVC's own reading is needed. `any_lock` reads a project whose
    lock file DVC refuses (DVC 1's format) all the same: its dvc.yaml is plain by construction."""
    from cml_action.sources.dvc import _dvc1_lock

    workspace = workspace.resolve()
    if (workspace / ".dvcignore").is_file() and any(
            line.strip() and not line.startswith("#") for line in (workspace / ".dvcignore").read_text().splitlines()):
        return None
    files = _dvc_files(workspace)
    if not files:
        return None
    reader = _Reader(workspace)
    for dvcfile in files:
        data = _load(workspace / dvcfile)
        if data is None or not _plain(data):
            return None
        if not any_lock and _dvc1_lock(workspace / os.path.dirname(dvcfile)):
            return None  # DVC refuses it: let DVC say so, in its words
        for name, stage in (data.get("stages") or {}).items():
            reader.stage(dvcfile, str(name), stage)
        reader.top_level(dvcfile, data)
    return reader.declared()
