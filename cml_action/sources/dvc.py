"""DVC projects: what to report comes from DVC's own declarations; the values equal `dvc metrics diff` /
`dvc params diff`, computed without DVC's machinery on the hot path.

Declarations (stage metrics/params/plots, the top-level `metrics:`/`params:`/`plots:` of every dvc.yaml, the
default params.yaml) are read through DVC's Python API, so wdir, templating, foreach/matrix and nested dvc.yaml
files are interpreted by DVC itself. Values are read the way DVC reads them at a revision, directly: a
git-tracked file from git; a DVC output through the md5 that revision's dvc.lock records, out of the local
cache. Anything the fast path cannot settle exactly (object missing locally, directory outputs, `.dvc` files,
a custom cache location) goes to `dvc.api.read`, which is DVC itself and may stream from the remote. Opening
DVC's repo at two revisions, as `dvc metrics diff` does, costs about a second; this costs milliseconds.

`dvc pull`, `dvc repro` and `dvc push` run as DVC's own CLI (`python -m dvc`), so their exit code and full
message are DVC's, and reach the report. A dvc.lock in DVC 1's format (no `schema:`), which DVC 3 refuses,
is named as such with DVC's error, and read directly: DVC 1 had no templating, so its dvc.yaml is plain.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import tomllib
import yaml

from cml_action.errors import UserError
from cml_action.gitrefs import Baseline
from cml_action.metrics import MetricRow, Value, flatten, load_values
from cml_action.plots.spec import PlotFile, PlotSpec
from cml_action.report.model import Section
from cml_action.sources.base import Contribution, Job, Side, Unreadable, stale_warning

if TYPE_CHECKING:
    from cml_action.ci.context import CIContext
    from cml_action.train import TrainResult

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
    plots: list[PlotSpec] = field(default_factory=list)  # one per declaration, as `dvc plots diff` draws them
    # params file -> the key paths DVC tracks in it; an empty list (or no entry) means the whole file
    param_keys: dict[str, list[str]] = field(default_factory=dict)
    # metrics or plots file -> its dvc.lock entry, for files that are outputs of a stage
    outputs: dict[str, Locked] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def is_dvc_project(workspace: Path) -> bool:
    """DVC is an optional extra: a dvc.yaml without DVC installed is reported on as a plain project."""
    return (workspace / "dvc.yaml").is_file() and (workspace / ".dvc").is_dir() and \
        importlib.util.find_spec("dvc") is not None


def dvc_message(exc: BaseException) -> str:
    """DVC's whole message on one line: the headline, each validation error with where it is, the cause."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    errors = getattr(getattr(exc, "exc", None), "errors", None) or []
    details = [str(getattr(e, "error_message", e)) + (f" in {' -> '.join(map(str, e.path))}" if getattr(e, "path", None)
                                                      else "") for e in errors]
    if details:
        text += ": " + "; ".join(details)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text and not details:
        text += f" ({' '.join(str(cause).split())})"
    return text


def _repo(workspace: Path) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        return Repo(str(workspace))
    except DvcException as exc:
        raise UserError(f"DVC cannot open {workspace.name}: {dvc_message(exc)}") from None


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


def _columns(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(map(str, value)) if isinstance(value, list) else (str(value),)


def _file_plot(rel: str, props: Any, plot_id: str | None = None) -> PlotSpec:
    props = props if isinstance(props, dict) else {}
    x = props.get("x")
    return PlotSpec(plot_id or rel, _plot_options(props),
                    (PlotFile(rel, str(x) if isinstance(x, str) else None, _columns(props.get("y"))),))


def _top_level_plots(workspace: Path, root: str, definitions: dict[str, list[Any]]) -> list[PlotSpec]:
    """dvc.yaml's top-level `plots:`: an id that is a path (relative to that dvc.yaml), or a named plot whose
    `y` maps data files to columns: one declaration whose files are drawn together, as DVC draws it."""
    plots: list[PlotSpec] = []
    for dvcfile, items in definitions.items():
        base = os.path.dirname(dvcfile)
        for item in items or []:
            plot_id, props = (item, {}) if isinstance(item, str) else next(iter(item.items()))
            props = props or {}
            ys = props.get("y")
            if not isinstance(ys, dict):
                plots.extend(_file_plot(rel, props) for rel in _expand(workspace, _rel(root, os.path.join(base, plot_id))))
                continue
            xs = props.get("x")
            files = []
            for source, columns in ys.items():
                x = xs.get(source) if isinstance(xs, dict) else xs
                files.append(PlotFile(_rel(root, os.path.join(base, source)), str(x) if x else None, _columns(columns)))
            options = _plot_options({k: v for k, v in props.items() if k not in ("x", "y")})
            options.setdefault("title", str(plot_id))
            plots.append(PlotSpec(str(plot_id), options, tuple(files)))
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


def _dvc1_lock(workspace: Path) -> bool:
    """A dvc.lock as DVC 1 wrote it: stage names at the top, no `schema:` (DVC 2 and 3 write schema '2.0')."""
    try:
        lock = yaml.safe_load((workspace / "dvc.lock").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(lock, dict) and bool(lock) and "schema" not in lock and "stages" not in lock


def declared(workspace: Path, *, plain: bool = True) -> Declared:
    """Everything `dvc metrics/params/plots show` would look at, in declaration order: from plain dvc.yaml
    files directly when they are plain (`plain=False` asks DVC in any case), else through DVC's index."""
    if plain:
        from cml_action.sources.dvcyaml import read_plain

        found = read_plain(workspace)
        if found is not None:
            return found
    from dvc.exceptions import DvcException

    repo = _repo(workspace)
    try:
        found = _from_index(workspace, repo)
    except DvcException as exc:
        where = str(getattr(exc, "path", "") or "").removeprefix("./") or "dvc.yaml"
        message = dvc_message(exc)
        old = None
        if where == "dvc.lock" and _dvc1_lock(workspace):
            from cml_action.sources.dvcyaml import read_plain

            old = read_plain(workspace, any_lock=True)
        if old is not None:
            found = old
            found.warnings.append(f"`dvc.lock` is in DVC 1's format, which DVC 3 refuses (DVC: {message}); "
                                  "cml-action read it as DVC 1 wrote it")
            return found
        raise UserError(f"DVC cannot read {where}: {message}") from None
    finally:
        repo.close()
    return found


def _from_index(workspace: Path, repo: Any) -> Declared:
    from dvc.repo.metrics.show import _collect_top_level_metrics
    from dvc.repo.params.show import _collect_top_level_params

    root = repo.root_dir
    metrics: list[str] = []
    outputs: dict[str, Locked] = {}
    params: list[tuple[str, list[str]]] = []
    plots: list[PlotSpec] = []
    for stage in repo.index.stages:
        lockfile = _rel(root, os.path.splitext(stage.dvcfile.path)[0] + ".lock")
        for out in stage.outs:
            rel = _rel(root, out.fs_path)
            if getattr(stage, "name", None):  # any output may be a top-level plot's or metric's file
                outputs[rel] = Locked(lockfile, stage.name, _posix(out.def_path))
            if out.metric:
                metrics.extend(_expand(workspace, rel))
            if out.plot:
                props = out.plot if isinstance(out.plot, dict) else {}
                plots.extend(_file_plot(p, props) for p in _expand(workspace, rel))
        for dep in stage.params:
            params.append((_rel(root, dep.fs_path), list(dep.params)))
    for path in _collect_top_level_metrics(repo):
        metrics.extend(_expand(workspace, _posix(path)))
    params.extend((_posix(path), []) for path in _collect_top_level_params(repo))
    plots.extend(_top_level_plots(workspace, root, repo.index._plots))
    return _declared(metrics, params, plots, outputs)


def _declared(metrics: list[str], params: list[tuple[str, list[str]]], plots: list[PlotSpec],
              outputs: dict[str, Locked]) -> Declared:
    params = [*params, (DEFAULT_PARAMS, [])]  # DVC shows params.yaml whenever a revision has one
    merged = _merge_params(params)
    first = {spec.pattern: spec for spec in reversed(plots)}  # the first declaration of an id wins
    return Declared(metrics=list(dict.fromkeys(metrics)), params=list(merged),
                    plots=[first[key] for key in dict.fromkeys(spec.pattern for spec in plots)],
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


def _cached(workspace: Path, out: dict[str, Any], md5: str) -> bytes | None:
    cache = workspace / ".dvc" / "cache"
    candidate = (cache / "files" / "md5" if out.get("hash") == "md5" else cache) / md5[:2] / md5[2:]
    return candidate.read_bytes() if candidate.is_file() else None


def _from_cache(workspace: Path, out: dict[str, Any], inside: str = "") -> bytes | None:
    """An output's bytes from the local cache; `inside` is a file's path within a directory output, found
    through the directory's listing (`<md5>.dir`, a JSON list of {md5, relpath})."""
    md5 = str(out.get("md5") or "")
    if not inside:
        return _cached(workspace, out, md5) if len(md5) == 32 else None
    if not md5.endswith(".dir"):
        return None
    listing = _cached(workspace, out, md5)
    try:
        entries = json.loads(listing) if listing is not None else []
    except ValueError:
        return None
    entry = next((e for e in entries if isinstance(e, dict) and e.get("relpath") == inside), None)
    return _cached(workspace, out, str(entry.get("md5") or "")) if entry else None


def _output_of(found: Declared, rel: str) -> tuple[Locked, str] | None:
    """The stage output holding `rel`: the file itself, or a directory output it lies in."""
    if rel in found.outputs:
        return found.outputs[rel], ""
    for path, locked in found.outputs.items():
        if rel.startswith(path + "/"):
            return Locked(locked.lockfile, locked.stage, locked.path), rel[len(path) + 1:]
    return None


def _through_dvc(workspace: Path, sha: str, rel: str, *, locked: bool) -> bytes | None:
    """DVC itself (it may stream from the remote). Not there at that revision: None, as in DVC's diff. An
    output that revision's lock records (`locked`) but DVC cannot get (object in no cache, remote
    unreachable) is Unreadable, with DVC's reason: DVC says "failed to load some metrics" there."""
    import dvc.api
    from dvc.exceptions import PathMissingError

    try:
        return dvc.api.read(rel, repo=str(workspace), rev=sha, mode="rb")
    except (PathMissingError, FileNotFoundError) as exc:
        if not locked:
            return None
        raise Unreadable(dvc_message(exc.__cause__ or exc)) from None
    except Exception as exc:  # noqa: BLE001 - DVC raises many kinds; its message is what the user needs
        raise Unreadable(dvc_message(exc)) from None


class Revisions:
    """Bytes of declared files at a revision, the way DVC finds them: git first, then the output's hash in
    that revision's lock file (each lock file parsed once), the local cache, and last DVC itself."""

    def __init__(self, workspace: Path, found: Declared, show: Callable[[str, str], bytes | None]) -> None:
        self.workspace, self.found, self.show = workspace, found, show
        self.locks: dict[tuple[str, str], dict[str, Any]] = {}

    def _lock(self, sha: str, lockfile: str) -> dict[str, Any]:
        key = (sha, lockfile)
        if key not in self.locks:
            raw = self.show(sha, lockfile)
            try:
                lock = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if raw else {}  # noqa: S506
            except yaml.YAMLError:
                lock = {}
            lock = lock if isinstance(lock, dict) else {}
            # DVC 2/3 write `schema:` and `stages:`; DVC 1 wrote the stages at the top
            self.locks[key] = (lock.get("stages") if "schema" in lock or "stages" in lock else lock) or {}
        return self.locks[key]

    def _entry(self, sha: str, locked: Locked) -> dict[str, Any] | None:
        stage = self._lock(sha, locked.lockfile).get(locked.stage) or {}
        for out in stage.get("outs") or []:
            if isinstance(out, dict) and _posix(str(out.get("path", ""))) == locked.path:
                return out
        return None

    def at(self, sha: str, rel: str) -> bytes | None:
        raw = self.show(sha, rel)
        if raw is not None:
            return raw
        owner = _output_of(self.found, rel)
        if owner is not None:
            locked, inside = owner
            out = self._entry(sha, locked)
            if out is not None and out.get("cache") is False:
                return None  # an uncached output lives only in git, and git had none
            if out is not None:
                cached = _from_cache(self.workspace, out, inside)
                return cached if cached is not None else _through_dvc(self.workspace, sha, rel, locked=True)
        dvc_known = self.show(sha, "dvc.lock") is not None or self.show(sha, rel + ".dvc") is not None
        return _through_dvc(self.workspace, sha, rel, locked=False) if dvc_known else None


def _head(job: Job, files: list[str], parse: Callable[[bytes, str], dict[str, Value]],
          out: Contribution) -> tuple[Side, set[str]]:
    head, stale = Side(), set()
    for rel in files:
        path = job.workspace / rel
        if not path.is_file():
            continue  # not produced at head: DVC shows its baseline values only
        try:
            head.values[rel] = parse(path.read_bytes(), rel)
        except OSError as exc:
            out.problems.add(f"{rel}: cannot read: {exc.strerror}")
        except UserError as exc:
            out.problems.add(str(exc))
        if job.stale(path):
            stale.add(rel)
    return head, stale


def _value_rows(job: Job, files: list[str], revisions: Revisions, parse: Callable[[bytes, str], dict[str, Value]],
                kind: str, out: Contribution) -> list[MetricRow]:
    from cml_action.sources.files import value_rows

    head, stale = _head(job, files, parse, out)
    return value_rows(job, files, head, stale, revisions.at, parse, kind, out)


def _params_parser(found: Declared) -> Callable[[bytes, str], dict[str, Value]]:
    return lambda raw, rel: _param_values(raw, rel, found.param_keys.get(rel, []))


def _job(workspace: Path, baseline_sha: str | None) -> Job:
    baselines = (Baseline(baseline_sha, baseline_sha, baseline_sha),) if baseline_sha else ()
    return Job(workspace=workspace, out_dir=workspace, baselines=baselines)


def metric_rows(workspace: Path, baseline_sha: str | None, found: Declared | None = None) -> list[MetricRow]:
    """Working tree against the baseline revision, as `dvc metrics diff --all <baseline>` reports them."""
    found = found or declared(workspace)
    job = _job(workspace, baseline_sha)
    return _value_rows(job, found.metrics, Revisions(workspace, found, job.show), _metric_values, "metrics",
                       Contribution())


def param_rows(workspace: Path, baseline_sha: str | None, found: Declared | None = None) -> list[MetricRow]:
    """Working tree against the baseline revision, as `dvc params diff --all <baseline>` reports them."""
    found = found or declared(workspace)
    job = _job(workspace, baseline_sha)
    return _value_rows(job, found.params, Revisions(workspace, found, job.show), _params_parser(found), "params",
                       Contribution())


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    command: str
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_dvc(workspace: Path, args: list[str], env: Mapping[str, str]) -> Outcome:
    """DVC's CLI, as a user runs it: its exit code and its whole output. Remote credentials come from the
    environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*); our own token never reaches it."""
    from cml_action.train import training_env

    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=workspace, env=training_env(env, workspace),
                          capture_output=True, text=True, errors="replace", check=False)
    return Outcome("dvc " + " ".join(args), proc.returncode, (proc.stdout + proc.stderr).strip())


def _fence(text: str) -> str:
    longest = max((len(run) for run in text.split("\n") for run in _backtick_runs(run)), default=0)
    return "`" * max(3, longest + 1)


def _backtick_runs(line: str) -> list[str]:
    runs, current = [], ""
    for char in line:
        if char == "`":
            current += char
        elif current:
            runs.append(current)
            current = ""
    return runs + ([current] if current else [])


def failed(outcome: Outcome, consequence: str = "") -> Contribution:
    """A failed DVC command as a problem (exit 2 after the report is posted) with DVC's output in the report."""
    out = Contribution()
    out.problems.add(f"`{outcome.command}` failed with exit code {outcome.exit_code}{consequence}: "
                     + (outcome.output.splitlines()[-1] if outcome.output else "no output"))
    fence = _fence(outcome.output)
    out.sections.append(Section(f"{outcome.command} failed (exit code {outcome.exit_code})",  # titles are escaped
                                f"{fence}text\n{outcome.output or '(no output)'}\n{fence}", priority=1))
    return out


class DvcSource:
    """DVC's declarations as the report's content (unless the user named files), and pull/repro/push as hooks
    around training on the `run` command."""

    def __init__(self, declarations: bool = True, pull: bool = False, repro: bool = False, push: bool = False,
                 timeout_s: int = 0) -> None:
        self.declarations, self.pull, self.repro, self.push = declarations, pull, repro, push
        self.timeout_s = timeout_s
        self.draws = declarations

    def before_training(self, ctx: CIContext, env: Mapping[str, str]) -> Contribution:
        if not self.pull:
            return Contribution()
        with ctx.group("dvc pull"):
            outcome = run_dvc(ctx.workspace, ["pull"], env)
            with ctx.untrusted_output() as clean:  # file names in DVC's output are the pull request's
                print(clean(outcome.output), flush=True)
        return Contribution() if outcome.ok else failed(outcome, "; training was not run")

    def train(self, ctx: CIContext, env: Mapping[str, str]) -> TrainResult | None:
        """`dvc repro` as the training: streamed live, its exit code and last lines (DVC's message) kept."""
        if not self.repro:
            return None
        from cml_action.train import run_training

        command = f"{shlex.quote(sys.executable)} -m dvc repro"
        return dataclasses.replace(run_training(command, ctx.workspace, ctx, env, timeout_s=self.timeout_s),
                                   command="dvc repro")

    def after_training(self, ctx: CIContext, env: Mapping[str, str], training: TrainResult | None) -> Contribution:
        if not self.push or (training is not None and not training.ok):
            return Contribution()
        with ctx.group("dvc push"):
            outcome = run_dvc(ctx.workspace, ["push"], env)
            with ctx.untrusted_output() as clean:
                print(clean(outcome.output), flush=True)
        return Contribution() if outcome.ok else failed(outcome)

    def collect(self, job: Job) -> Contribution:
        out = Contribution()
        if not self.declarations:
            return out
        try:
            found = declared(job.workspace)
        except UserError as exc:
            out.problems.add(str(exc))
            return out
        out.warnings += found.warnings
        revisions = Revisions(job.workspace, found, job.show)
        out.metrics = _value_rows(job, found.metrics, revisions, _metric_values, "metrics", out)
        out.params = _value_rows(job, found.params, revisions, _params_parser(found), "params", out)
        if found.plots:
            from cml_action.sources.plotting import collect_plots

            collect_plots(found.plots, job, revisions.at, out)
        stale_warning(out)
        return out
