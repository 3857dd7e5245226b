"""DVC projects: what to report comes from DVC's own declarations; the values equal `dvc metrics diff` /
`dvc params diff`, computed without DVC's machinery on the hot path.

Declarations (stage metrics/params/plots, the top-level `metrics:`/`params:`/`plots:` of every dvc.yaml, the
default params.yaml) are read through DVC's Python API, so wdir, templating, foreach/matrix and nested dvc.yaml
files are interpreted by DVC itself. Values are read the way DVC reads them at a revision, directly: a
git-tracked file from git; a DVC output through the md5 that revision's dvc.lock records, out of the local
cache. Anything the fast path cannot settle exactly (object missing locally, directory outputs, `.dvc` files,
a custom cache location) goes to `dvc.api.read`, which is DVC itself and may stream from the remote. Opening
DVC's repo at two revisions, as `dvc metrics diff` does, costs about a second; this costs milliseconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import tomllib
import yaml

from cml_action.errors import UserError
from cml_action.gitrefs import show
from cml_action.metrics import MetricRow, Value, flatten, load_values, rows_for

PLOT_KEYS = ("x", "y", "title", "x_label", "y_label", "template")
DEFAULT_PARAMS = "params.yaml"


@dataclass(frozen=True)
class Locked:
    """Where a stage output's hash lives in dvc.lock: the lock file (workspace-relative), the stage's name
    there and the path as the lock writes it (relative to the stage's wdir)."""

    lockfile: str
    stage: str
    path: str


@dataclass(frozen=True)
class Declared:
    metrics: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    plots: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    # params file -> the key paths DVC tracks in it; an empty list (or no entry) means the whole file
    param_keys: dict[str, list[str]] = field(default_factory=dict)
    # metrics file -> its dvc.lock entry, for metrics that are outputs of a stage
    outputs: dict[str, Locked] = field(default_factory=dict)


def is_dvc_project(workspace: Path) -> bool:
    """DVC is an optional extra: a dvc.yaml without DVC installed is reported on as a plain project."""
    return (workspace / "dvc.yaml").is_file() and (workspace / ".dvc").is_dir() and \
        importlib.util.find_spec("dvc") is not None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _repo(workspace: Path) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        return Repo(str(workspace))
    except DvcException as exc:
        raise UserError(f"DVC cannot open {workspace.name}: {_one_line(exc)}") from None


def _posix(path: str) -> str:
    return PurePosixPath(Path(path).as_posix()).as_posix()


def _rel(root: str, path: str) -> str:
    """Repo-relative posix path, as the DVC CLI prints file names when run at the repo root."""
    return _posix(os.path.relpath(os.path.normpath(path), root))


def _expand(workspace: Path, rel: str) -> list[str]:
    """A declared directory stands for the files in it, as DVC expands it."""
    path = workspace / rel
    if not path.is_dir():
        return [rel]
    return sorted(p.relative_to(workspace).as_posix() for p in path.rglob("*") if p.is_file())


def _plot_options(props: Any) -> dict[str, str]:
    from cml_action.plots.spec import TEMPLATES

    if not isinstance(props, dict):
        return {}
    options: dict[str, str] = {}
    for key in PLOT_KEYS:
        value = props.get(key)
        if value is None or isinstance(value, dict):
            continue
        options[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    if options.get("template") not in (None, *TEMPLATES):
        options.pop("template")  # a custom Vega template file: our renderer picks the kind from the data
    return options


def _top_level_plots(workspace: Path, root: str, definitions: dict[str, list[Any]]) -> list[tuple[str, dict[str, str]]]:
    """dvc.yaml's top-level `plots:`: an id that is a path (relative to that dvc.yaml), or a named plot whose
    `y` maps data files to columns; the latter becomes one entry per data file."""
    plots: list[tuple[str, dict[str, str]]] = []
    for dvcfile, items in definitions.items():
        base = os.path.dirname(dvcfile)
        for item in items or []:
            plot_id, props = (item, {}) if isinstance(item, str) else next(iter(item.items()))
            props = props or {}
            ys = props.get("y")
            if not isinstance(ys, dict):
                for rel in _expand(workspace, _rel(root, os.path.join(base, plot_id))):
                    plots.append((rel, _plot_options(props)))
                continue
            xs = props.get("x")
            for source, columns in ys.items():
                options = _plot_options({**props, "y": columns})
                if isinstance(xs, dict) and xs.get(source):
                    options["x"] = str(xs[source])
                options.setdefault("title", str(plot_id))
                plots.append((_rel(root, os.path.join(base, source)), options))
    return plots


def _merge_params(entries: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """A file tracked whole anywhere is tracked whole; otherwise the union of its keys (DVC's rule)."""
    merged: dict[str, list[str]] = {}
    whole = {path for path, keys in entries if not keys}
    for path, keys in entries:
        if path in whole:
            merged[path] = []
        else:
            merged.setdefault(path, [])
            merged[path].extend(k for k in keys if k not in merged[path])
    return merged


def declared(workspace: Path) -> Declared:
    """Everything `dvc metrics/params/plots show` would look at, in declaration order."""
    from dvc.exceptions import DvcException
    from dvc.repo.metrics.show import _collect_top_level_metrics
    from dvc.repo.params.show import _collect_top_level_params

    repo = _repo(workspace)
    try:
        root = repo.root_dir
        metrics: list[str] = []
        outputs: dict[str, Locked] = {}
        params: list[tuple[str, list[str]]] = []
        plots: list[tuple[str, dict[str, str]]] = []
        for stage in repo.index.stages:
            lockfile = _rel(root, os.path.splitext(stage.dvcfile.path)[0] + ".lock")
            for out in stage.outs:
                rel = _rel(root, out.fs_path)
                if out.metric:
                    metrics.extend(_expand(workspace, rel))
                    if getattr(stage, "name", None):
                        outputs[rel] = Locked(lockfile, stage.name, _posix(out.def_path))
                if out.plot:
                    props = out.plot if isinstance(out.plot, dict) else {}
                    plots.extend((p, _plot_options(props)) for p in _expand(workspace, rel))
            for dep in stage.params:
                params.append((_rel(root, dep.fs_path), list(dep.params)))
        for path in _collect_top_level_metrics(repo):
            metrics.extend(_expand(workspace, _posix(path)))
        params.extend((_posix(path), []) for path in _collect_top_level_params(repo))
        params.append((DEFAULT_PARAMS, []))  # DVC shows params.yaml whenever a revision has one
        plots.extend(_top_level_plots(workspace, root, repo.index._plots))
    except DvcException as exc:
        raise UserError(f"DVC cannot read dvc.yaml: {_one_line(exc)}") from None
    finally:
        repo.close()
    merged = _merge_params(params)
    first_plots = {path: options for path, options in reversed(plots)}  # the first declaration of a file wins
    return Declared(metrics=list(dict.fromkeys(metrics)), params=list(merged),
                    plots=[(path, first_plots[path]) for path in dict.fromkeys(path for path, _ in plots)],
                    param_keys=merged, outputs=outputs)


# --- values ---------------------------------------------------------------------------------------


def _dvc_metric_view(obj: Any) -> Any:
    """Only what DVC keeps of a metrics file: numbers, strings, booleans, and mappings of them."""
    if isinstance(obj, (int, float, str)):
        return obj
    if not isinstance(obj, dict):
        return None
    kept = {k: _dvc_metric_view(v) for k, v in obj.items()}
    return {k: v for k, v in kept.items() if v not in (None, {})}


def _metric_values(raw: bytes, rel: str) -> dict[str, Value]:
    suffix = Path(rel).suffix.lower()
    loader: Callable[[str], Any] = {".json": json.loads, ".toml": tomllib.loads}.get(suffix, yaml.safe_load)
    try:
        data = loader(raw.decode("utf-8-sig"))
    except (ValueError, yaml.YAMLError, UnicodeDecodeError):
        return load_values(raw, rel)  # raises the one-line UserError naming the file and position
    view = _dvc_metric_view(data)
    return flatten(view) if isinstance(view, dict) else {}


def _param_values(raw: bytes, rel: str, keys: list[str]) -> dict[str, Value]:
    values = load_values(raw, rel)
    if not keys:
        return values
    return {k: v for k, v in values.items() if any(k == p or k.startswith(p + ".") for p in keys)}


def _lock_entry(workspace: Path, sha: str, locked: Locked) -> dict[str, Any] | None:
    raw = show(workspace, sha, locked.lockfile)
    if raw is None:
        return None
    try:
        lock = yaml.safe_load(raw) or {}
    except yaml.YAMLError:
        return None
    stage = (lock.get("stages") or {}).get(locked.stage) or {}
    for out in stage.get("outs") or []:
        if _posix(str(out.get("path", ""))) == locked.path:
            return out
    return None


def _from_cache(workspace: Path, out: dict[str, Any]) -> bytes | None:
    md5 = str(out.get("md5") or "")
    if len(md5) != 32:  # absent, or a directory (".dir") whose listing needs DVC
        return None
    cache = workspace / ".dvc" / "cache"
    candidate = (cache / "files" / "md5" if out.get("hash") == "md5" else cache) / md5[:2] / md5[2:]
    return candidate.read_bytes() if candidate.is_file() else None


def _through_dvc(workspace: Path, sha: str, rel: str) -> bytes | None:
    try:
        import dvc.api

        return dvc.api.read(rel, repo=str(workspace), rev=sha, mode="rb")
    except Exception:  # noqa: BLE001 - what DVC cannot find at that revision is absent there, as in its diff
        return None


def _at_revision(workspace: Path, sha: str, rel: str, found: Declared) -> bytes | None:
    raw = show(workspace, sha, rel)
    if raw is not None:
        return raw
    locked = found.outputs.get(rel)
    if locked is not None:
        out = _lock_entry(workspace, sha, locked)
        if out is not None and out.get("cache") is False:
            return None  # an uncached output lives only in git, and git had none
        if out is not None:
            cached = _from_cache(workspace, out)
            if cached is not None:
                return cached
            return _through_dvc(workspace, sha, rel)
    dvc_known = show(workspace, sha, "dvc.lock") is not None or show(workspace, sha, rel + ".dvc") is not None
    return _through_dvc(workspace, sha, rel) if dvc_known else None


def _rows(workspace: Path, files: list[str], baseline_sha: str | None, found: Declared,
          parse: Callable[[bytes, str], dict[str, Value]]) -> list[MetricRow]:
    head: dict[str, dict[str, Value]] = {}
    base: dict[str, dict[str, Value]] = {}
    for rel in files:
        path = workspace / rel
        if path.is_file():
            try:
                head[rel] = parse(path.read_bytes(), rel)
            except OSError as exc:
                raise UserError(f"{rel}: cannot read: {exc.strerror}") from None
        if baseline_sha:
            raw = _at_revision(workspace, baseline_sha, rel, found)
            if raw is not None:
                try:
                    base[rel] = parse(raw, rel)
                except UserError:
                    pass  # a baseline DVC could not parse either: no old values, as in its diff
    return rows_for(files, head, base)


def metric_rows(workspace: Path, baseline_sha: str | None, found: Declared | None = None) -> list[MetricRow]:
    """Working tree against the baseline revision, as `dvc metrics diff --all <baseline>` reports them."""
    found = found or declared(workspace)
    return _rows(workspace, found.metrics, baseline_sha, found, _metric_values)


def param_rows(workspace: Path, baseline_sha: str | None, found: Declared | None = None) -> list[MetricRow]:
    """Working tree against the baseline revision, as `dvc params diff --all <baseline>` reports them."""
    found = found or declared(workspace)
    return _rows(workspace, found.params, baseline_sha, found,
                 lambda raw, rel: _param_values(raw, rel, found.param_keys.get(rel, [])))


# --- commands -------------------------------------------------------------------------------------


def _run(workspace: Path, what: str, action: Callable[[Any], Any]) -> None:
    """One Repo per command (constructing it is the slow part); DVC's errors become one line."""
    from dvc.exceptions import DvcException

    repo = _repo(workspace)
    try:
        action(repo)
    except (DvcException, OSError) as exc:
        raise UserError(f"dvc {what} failed: {_one_line(exc)}") from None
    finally:
        repo.close()


def pull(workspace: Path) -> None:
    """Remote credentials come from the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*), as for
    the dvc CLI."""
    _run(workspace, "pull", lambda repo: repo.pull())


def repro(workspace: Path) -> None:
    _run(workspace, "repro", lambda repo: repo.reproduce())


def push(workspace: Path) -> None:
    _run(workspace, "push", lambda repo: repo.push())
