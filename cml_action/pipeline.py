"""The `run`, `report` and `publish` commands: validate -> train -> collect -> gate -> render -> publish.

Inputs are validated before training starts (an unknown target should not cost an hour of GPU). What the
report contains comes from the sources (cml_action/sources/), each answering for its own content and its own
problems; problems found after training (a missing metrics file, a failed `dvc pull`...) never lose the run:
the report is still written and posted with the problem stated, and the exit code says 2 afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from cml_action import preflight, sources
from cml_action.ci.context import CIContext, detect
from cml_action.deliver import post_report as _post
from cml_action.errors import EXIT_FAILED, EXIT_USAGE, UserError
from cml_action.forges import find_token
from cml_action.forges.base import Target
from cml_action.gitrefs import Blobs, current_branch, head_sha, resolve_baselines
from cml_action.plots.painter import Painter, worker_count
from cml_action.publish import safe_text
from cml_action.report.render import ReportData, render
from cml_action.sources.base import Contribution, Job, Problems
from cml_action.train import TrainResult, run_training
from cml_action.workspace_files import Refused, check

META_FILE = "report.json"
REPORT_FILE = "report.md"
SUMMARY_LIMIT = 1_000_000  # GitHub refuses job summaries over 1 MiB


def _workspace(args: argparse.Namespace) -> Path:
    workspace = Path(args.workdir).resolve()
    if not workspace.is_dir():
        raise UserError(f"--workdir {args.workdir}: not a directory")
    return workspace


def _context(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[CIContext, str, str]:
    workspace = _workspace(args)
    ctx = detect(env, workspace)
    if ctx.kind == "local" or not ctx.sha:
        # a shell run still describes a commit, when there is one
        from dataclasses import replace

        ctx = replace(ctx, sha=ctx.sha or head_sha(workspace), ref_name=ctx.ref_name or current_branch(workspace))
    token, source = find_token(ctx, getattr(args, "token", ""), env)
    ctx.mask(token)
    return ctx, token, source


@dataclass(frozen=True)
class Plan:
    """What was validated before any compute was spent."""

    out_dir: Path
    gate_rules: list | None


@dataclass
class Trained:
    """The train step's outcome: the training (None when nothing ran), when it started (values written before
    are stale; None when nothing ran or DVC vouched for its outputs) and what the DVC hooks reported."""

    training: TrainResult | None = None
    since: float | None = None
    contribution: Contribution = field(default_factory=Contribution)


def _validate(args: argparse.Namespace, ctx: CIContext) -> Plan:
    """Everything that can be checked before spending compute: an unknown target should not cost an hour of GPU."""
    Target.parse(args.target)
    gate_rules = None
    if args.gates:
        from cml_action.gates import parse_gates

        gate_rules = parse_gates(args.gates)
    if args.plots:
        from cml_action.plots import parse_plot_entries

        parse_plot_entries(args.plots)
    if args.gates_missing not in ("fail", "skip"):
        raise UserError(f"--gates-missing must be fail or skip, got {args.gates_missing!r}")
    out_dir = preflight.output_dir(args, ctx.workspace)
    preflight.check_baseline(args, ctx, ctx.workspace)
    preflight.timeout_s(args)
    return Plan(out_dir=out_dir, gate_rules=gate_rules)


def _conclusion(training: TrainResult | None, gates: str) -> str:
    if training is not None and not training.ok:
        return "failure"
    return {"passed": "success", "failed": "failure"}.get(gates, "neutral")


def run_command(args: argparse.Namespace, env: Mapping[str, str], painter: Painter | None = None) -> int:
    """train -> collect -> gate -> render -> publish. `painter`: a drawing process the CLI started early."""
    ctx, token, token_source = _context(args, env)
    plan = _validate(args, ctx)
    chosen = sources.choose(args, ctx.workspace)
    trained = train(args, ctx, env, chosen)
    data, problems = collect(args, ctx, chosen, trained, plan.out_dir, painter)
    gate(plan.gate_rules, args, data)
    markdown, report_path, meta = write_report(args, ctx, data, plan.out_dir)
    code = _post(args, ctx, token, token_source, markdown, plan.out_dir, report_path, meta)
    return _exit_code(args, data, problems, code)


def train(args: argparse.Namespace, ctx: CIContext, env: Mapping[str, str], chosen: list) -> Trained:
    """The user's command (or a source's, `dvc repro`), between the sources' before/after hooks. A hook that
    fails before training (a failed `dvc pull`) stops the training: its data would be missing."""
    trained = Trained()
    if args.command != "run":
        return trained
    hooks = [s for s in chosen if isinstance(s, sources.TrainingHooks)]
    for hook in hooks:
        trained.contribution.extend(hook.before_training(ctx, env))
    if trained.contribution.problems.messages:
        return trained
    started = time.time()
    if args.run:
        trained.training = _train(args, ctx.workspace, ctx, env)
        trained.since = started
    for hook in hooks if trained.training is None else []:
        trained.training = hook.train(ctx, env)
        if trained.training is not None:
            trained.since = None if trained.training.ok else started  # DVC vouches for what it skipped
            break
    for hook in hooks:
        trained.contribution.extend(hook.after_training(ctx, env, trained.training))
    return trained


def _painter(chosen: list, early: Painter | None) -> Painter:
    """The early painter if there is one, else a new one when a source draws (started now, it imports the
    drawing stack while the sources read their data)."""
    if early is not None and early.running:
        return early
    return Painter(worker_count() if any(getattr(s, "draws", False) for s in chosen) else 0)


def collect(args: argparse.Namespace, ctx: CIContext, chosen: list, trained: Trained,
            out_dir: Path, early: Painter | None = None) -> tuple[ReportData, Problems]:
    """Every source's contribution against the baseline(s), gathered into the report's data."""
    found = trained.contribution
    with _painter(chosen, early) as drawing, Blobs(ctx.workspace) as blobs:
        baselines, warnings = resolve_baselines(args.baseline, ctx, ctx.workspace)  # the painter warms up meanwhile
        head_label = "workspace" if ctx.kind == "local" and baselines and baselines[0].ref == "HEAD" else "head"
        job = Job(workspace=ctx.workspace, out_dir=out_dir, baselines=tuple(baselines), head_label=head_label,
                  since=trained.since, painter=drawing, blobs=blobs)
        found.extend(sources.collect(chosen, job))
    data = ReportData(title=args.title, ctx=ctx, sha=ctx.sha, branch=ctx.ref_name,
                      baseline=baselines[0] if baselines else None, training=trained.training, headline=args.headline,
                      more_baselines=baselines[1:], head_label=head_label)
    data.warnings += warnings + found.warnings
    data.metrics, data.params, data.figures, data.refused = found.metrics, found.params, found.figures, found.refused
    data.sections = found.lead_sections + found.sections
    data.images = found.images
    data.warnings.extend(f"input problem: {m}" for m in found.problems.messages)
    return data, found.problems


def gate(gate_rules: list | None, args: argparse.Namespace, data: ReportData) -> None:
    if gate_rules is None:
        return
    from cml_action.gates import evaluate_gates, gates_markdown

    gates = evaluate_gates(gate_rules, data.metrics, args.gates_missing)
    data.gates_status = gates.status
    data.gates_markdown = gates_markdown(gates)


def write_report(args: argparse.Namespace, ctx: CIContext, data: ReportData, out_dir: Path) -> tuple[str, Path, dict]:
    markdown = safe_text(render(data), ctx.redactor)
    report_path = out_dir / REPORT_FILE
    report_path.write_text(markdown, encoding="utf-8")
    meta = {"title": args.title, "sha": ctx.sha, "pr_number": ctx.pr_number, "gates": data.gates_status,
            "conclusion": _conclusion(data.training, data.gates_status), "images": _declared_images(data)}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return markdown, report_path, meta


def _declared_images(data: ReportData) -> list[str]:
    """The only images `publish` may upload: the plots drawn or copied, and the user's markdown's own images."""
    return [f.path for f in data.figures] + [path for f in data.figures for _, path in f.beside] + data.images


def _exit_code(args: argparse.Namespace, data: ReportData, problems: Problems, code: int) -> int:
    """After the report is posted: training failed 1, input problems 2, failed gates 1 (when asked)."""
    training = data.training
    if training is not None and training.timed_out_after_s:
        print(f"cml-action: error: training timed out (timeout {args.timeout}); the report was posted", file=sys.stderr)
        return EXIT_FAILED
    if training is not None and not training.ok:
        print(f"cml-action: error: training failed with exit code {training.exit_code}", file=sys.stderr)
        return EXIT_FAILED
    for message in problems.messages:
        print(f"cml-action: error: {message}", file=sys.stderr)
    if problems.messages:
        return EXIT_USAGE
    if data.gates_status == "failed" and args.fail_on_gate:
        print("cml-action: quality gates failed", file=sys.stderr)
        return EXIT_FAILED
    return code


def _train(args: argparse.Namespace, workspace: Path, ctx: CIContext, env: Mapping[str, str]) -> TrainResult:
    if getattr(args, "train_image", ""):
        from cml_action.train_container import run_in_image

        from cml_action.ci.context import Filtered

        with ctx.group(f"Training in {args.train_image}: {args.run}"), ctx.untrusted_output() as clean:
            outcome = run_in_image(args.train_image, args.run, workspace, args.train_env, env, Filtered(sys.stdout, clean))
        return TrainResult(args.run, outcome.exit_code, outcome.duration_s, list(outcome.tail), outcome.hardware)
    return run_training(args.run, workspace, ctx, env, timeout_s=preflight.timeout_s(args))


def publish_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Post a report folder (or markdown file) as is: the trusted half of the fork pattern."""
    ctx, token, token_source = _context(args, env)
    if not args.report:
        raise UserError("publish needs --report: a report folder (cml-report/) or a markdown file")
    Target.parse(args.target)
    path = (ctx.workspace / args.report)
    if path.is_dir():
        path = path / REPORT_FILE
    if not path.is_file():
        raise UserError(f"--report {args.report}: no report found there")
    result = check(ctx.workspace, str(path.relative_to(ctx.workspace)) if path.is_relative_to(ctx.workspace) else str(path))
    if isinstance(result, Refused):
        raise UserError(f"--report {args.report}: {result.reason}")
    meta_path = path.parent / META_FILE
    meta: dict = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}  # an artifact's report.json is someone else's file: only an object is read
    # The title is harmless to take from the artifact; where to post is not: it comes from the trusted event.
    meta = {"title": args.title if args.title != "CML report" else str(meta.get("title") or args.title),
            "gates": str(meta.get("gates", "none")) if meta.get("gates") in ("passed", "failed", "none") else "none",
            "conclusion": str(meta.get("conclusion", "neutral"))
            if meta.get("conclusion") in ("success", "failure", "neutral") else "neutral"}
    markdown = result.read_text(encoding="utf-8", errors="replace")
    code = _post(args, ctx, token, token_source, markdown, result.parent, result, meta)
    if meta["gates"] == "failed" and args.fail_on_gate:
        return EXIT_FAILED
    return code
