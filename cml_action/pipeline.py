"""The `run`, `report` and `publish` commands: inputs -> (training) -> report file -> posted report.

Inputs are validated before training starts (an unknown target should not cost an hour of GPU).
Problems found after training (a missing metrics file...) never lose the run: the report is still
written and posted with the problem stated, and the exit code says 2 afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Mapping

from cml_action.ci.context import CIContext, detect
from cml_action.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, PermissionDenied, UserError
from cml_action.forges import find_token, open_forge
from cml_action.forges.base import Target
from cml_action.gitrefs import Baseline, current_branch, head_sha, resolve_baseline, show
from cml_action.metrics import MetricRow, Value, load_values, rows_for
from cml_action.publish import publish
from cml_action.report.model import Section
from cml_action.report.render import Figure, ReportData, render
from cml_action.train import TrainResult, run_training
from cml_action.workspace_files import Refused, check, expand

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


class Problems:
    """Input problems found after training: reported, then turned into exit code 2."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)


def _load_side(files: list[str], workspace: Path, baseline: Baseline | None, problems: Problems) -> list[MetricRow]:
    head: dict[str, dict[str, Value]] = {}
    base: dict[str, dict[str, Value]] = {}
    for name in files:
        result = check(workspace, name)
        if isinstance(result, Refused):
            problems.add(f"{name}: {result.reason}")
            continue
        try:
            head[name] = load_values(result, name)
        except UserError as exc:
            problems.add(str(exc))
        if baseline is not None:
            raw = show(workspace, baseline.sha, name)
            if raw is not None:
                try:
                    base[name] = load_values(raw, name)
                except UserError:
                    pass  # a baseline the user cannot fix any more is simply absent
    return rows_for(files, head, base)


def _rows(patterns: list[str], workspace: Path, baseline: Baseline | None, problems: Problems) -> list[MetricRow]:
    files, unmatched = expand(workspace, patterns)
    for pattern in unmatched:
        problems.add(f"{pattern}: no file matches")
    return _load_side(files, workspace, baseline, problems)


def _figures(
    entries: list[str], workspace: Path, out_dir: Path, baseline: Baseline | None, data: ReportData, problems: Problems
) -> None:
    from cml_action.plots import IMAGE_SUFFIXES, parse_plot_entries, render_plot

    for spec in parse_plot_entries(entries):
        files, unmatched = expand(workspace, [spec.pattern])
        for pattern in unmatched:
            problems.add(f"{pattern}: no file matches")
        for rel in files:
            result = check(workspace, rel)
            if isinstance(result, Refused):
                data.refused.append(result)
                continue
            if result.suffix.lower() in IMAGE_SUFFIXES:
                dest = out_dir / "images" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                if result != dest.resolve():
                    shutil.copyfile(result, dest)
                data.figures.append(Figure(dest.relative_to(out_dir).as_posix()))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                base_file = None
                if baseline is not None:
                    raw = show(workspace, baseline.sha, rel)
                    if raw is not None:
                        base_file = Path(tmp) / Path(rel).name
                        base_file.write_bytes(raw)
                try:
                    plot = render_plot(spec, rel, result, base_file, out_dir / "plots")
                except UserError as exc:
                    problems.add(str(exc))
                    continue
            data.figures.append(Figure(plot.image.relative_to(out_dir).as_posix(), plot.caption))


def _user_markdown(path_text: str, workspace: Path, out_dir: Path, problems: Problems) -> Section | None:
    """The user's own markdown, with its relative image links re-pointed from its folder to the report's."""
    from cml_action.report.images import replace_refs

    result = check(workspace, path_text)
    if isinstance(result, Refused):
        problems.add(f"{path_text}: {result.reason}")
        return None
    text = result.read_text(encoding="utf-8", errors="replace")
    source_dir = result.parent

    def repoint(ref: str) -> str:
        if ref.startswith("/"):
            return ref
        import os

        return os.path.relpath(source_dir / ref, out_dir.resolve())

    return Section(title="", body=replace_refs(text, repoint, lambda ref: ref), priority=2)


def _conclusion(training: TrainResult | None, gates: str) -> str:
    if training is not None and not training.ok:
        return "failure"
    return {"passed": "success", "failed": "failure"}.get(gates, "neutral")


def run_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    ctx, token, token_source = _context(args, env)
    workspace = ctx.workspace
    # --- validate everything that can be validated before spending compute ---------------------
    Target.parse(args.target)  # an unknown target fails now, not after an hour of training
    gate_rules = None
    if args.gates:
        from cml_action.gates import parse_gates

        gate_rules = parse_gates(args.gates)
    if args.plots:
        from cml_action.plots import parse_plot_entries

        parse_plot_entries(args.plots)
    if args.gates_missing not in ("fail", "skip"):
        raise UserError(f"--gates-missing must be fail or skip, got {args.gates_missing!r}")
    out_dir = (workspace / args.output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    problems = Problems()

    # --- train ----------------------------------------------------------------------------------
    training: TrainResult | None = None
    use_dvc = _dvc_in_use(args, workspace)
    if args.command == "run":
        if getattr(args, "dvc_pull", False) and use_dvc is not None:
            use_dvc.pull(workspace)
        if args.run:
            training = _train(args, workspace, ctx, env)
        elif getattr(args, "dvc_repro", False) and use_dvc is not None:
            import time

            started = time.monotonic()
            try:
                use_dvc.repro(workspace)
                code = 0
            except Exception as exc:  # noqa: BLE001 - reported as a failed training, with its message
                print(f"cml-action: dvc repro failed: {exc}", file=sys.stderr)
                code = 1
            from cml_action import hardware

            training = TrainResult("dvc repro", code, time.monotonic() - started, [], hardware.describe())
        if training is not None and training.ok and getattr(args, "dvc_push", False) and use_dvc is not None:
            use_dvc.push(workspace)

    # --- collect ----------------------------------------------------------------------------------
    baseline, warning = resolve_baseline(args.baseline, ctx, workspace)
    data = ReportData(title=args.title, ctx=ctx, sha=ctx.sha, branch=ctx.ref_name, baseline=baseline,
                      training=training, headline=args.headline)
    if warning:
        data.warnings.append(warning)
    metrics_files, params_files, plot_entries = args.metrics, args.params, args.plots
    if use_dvc is not None and not (metrics_files or params_files or plot_entries):
        try:
            declared = use_dvc.declared(workspace)
            data.metrics = use_dvc.metric_rows(workspace, baseline.sha if baseline else None, declared)
            data.params = use_dvc.param_rows(workspace, baseline.sha if baseline else None, declared)
            plot_entries = _dvc_plot_entries(declared)
        except UserError as exc:
            problems.add(str(exc))
    else:
        data.metrics = _rows(metrics_files, workspace, baseline, problems)
        data.params = _rows(params_files, workspace, baseline, problems)
    if plot_entries:
        _figures(plot_entries, workspace, out_dir, baseline, data, problems)
    if args.tensorboard:
        _tensorboard(args.tensorboard, workspace, out_dir, data, problems)
    if args.notebook_diff and baseline is not None:
        from cml_action.notebooks import notebook_diff_section

        section = notebook_diff_section(workspace, baseline.sha)
        if section is not None:
            data.sections.append(section)
    if args.report:
        section = _user_markdown(args.report, workspace, out_dir, problems)
        if section is not None:
            data.sections.insert(0, section)
    if gate_rules is not None:
        from cml_action.gates import evaluate_gates, gates_markdown

        gates = evaluate_gates(gate_rules, data.metrics, args.gates_missing)
        data.gates_status = gates.status
        data.gates_markdown = gates_markdown(gates)
    data.warnings.extend(f"input problem: {m}" for m in problems.messages)

    # --- write and post -------------------------------------------------------------------------
    markdown = render(data)
    report_path = out_dir / REPORT_FILE
    report_path.write_text(markdown, encoding="utf-8")
    meta = {"title": args.title, "sha": ctx.sha, "pr_number": ctx.pr_number, "gates": data.gates_status,
            "conclusion": _conclusion(training, data.gates_status)}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    code = _post(args, ctx, token, token_source, markdown, out_dir, report_path, meta)
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

        with ctx.group(f"Training in {args.train_image}: {args.run}"):
            outcome = run_in_image(args.train_image, args.run, workspace, args.train_env, env, sys.stdout)
        return TrainResult(args.run, outcome.exit_code, outcome.duration_s, list(outcome.tail), outcome.hardware)
    return run_training(args.run, workspace, ctx, env)


def _dvc_in_use(args: argparse.Namespace, workspace: Path):
    """The DVC integration module when this is a DVC project, else None (DVC is an optional extra)."""
    if not (workspace / "dvc.yaml").exists():
        return None
    try:
        from cml_action import dvc_source
    except ImportError:
        return None
    return dvc_source if dvc_source.is_dvc_project(workspace) else None


def _dvc_plot_entries(declared) -> list[str]:
    import shlex

    entries = []
    for plot in getattr(declared, "plots", []) or []:
        path = getattr(plot, "path", None) or plot[0]
        options = getattr(plot, "options", None) or (plot[1] if isinstance(plot, tuple) else {})
        entries.append(" ".join([shlex.quote(path)] + [f"{k}={shlex.quote(str(v))}" for k, v in options.items()]))
    return entries


def _tensorboard(logdir: str, workspace: Path, out_dir: Path, data: ReportData, problems: Problems) -> None:
    from cml_action.tensorboard_source import scalar_plots

    result = check(workspace, logdir) if not (workspace / logdir).is_dir() else (workspace / logdir).resolve()
    if isinstance(result, Refused) or not result.is_dir():
        problems.add(f"{logdir}: TensorBoard log directory not found in the workspace")
        return
    try:
        plots = scalar_plots(result, out_dir / "tensorboard")
    except UserError as exc:
        problems.add(str(exc))  # after training: report the problem, never lose the report
        return
    for plot in plots:
        data.figures.append(Figure(plot.image.relative_to(out_dir).as_posix(), plot.caption))


def _post(
    args: argparse.Namespace,
    ctx: CIContext,
    token: str,
    token_source: str,
    markdown: str,
    out_dir: Path,
    report_path: Path,
    meta: dict,
) -> int:
    """Post the report; forge trouble never loses it: it stays in the file and the job summary."""
    target = Target.parse(args.target)
    forge = None
    warnings: list[str] = []
    if ctx.kind != "local" and target.kind != "none":
        if not token:
            warnings.append("no token: the report was not posted (set the `token` input, or CML_TOKEN on GitLab)")
        else:
            forge = open_forge(ctx, token, token_source, args.assets_branch)
    try:
        published = publish(markdown, out_dir, ctx, forge, title=meta.get("title") or args.title, target=target,
                            update=args.update, check_run=args.check, conclusion=meta.get("conclusion", "neutral"))
    except PermissionDenied as exc:
        warnings.append(f"the report was not posted: {exc}")
        from cml_action.publish import Published

        published = Published(summary=markdown)
    warnings.extend(published.warnings)
    for warning in warnings:
        ctx.warning(warning)
    if ctx.summary_path is not None:
        from cml_action.report.shorten import shorten

        summary, _ = shorten(published.summary, SUMMARY_LIMIT, str(report_path.name))
        with open(ctx.summary_path, "a", encoding="utf-8") as fh:
            fh.write(summary + "\n")
    if ctx.kind == "gitlab":
        with ctx.group(f"Report: {meta.get('title') or args.title}"):
            print(published.summary)
    try:
        shown = report_path.relative_to(ctx.workspace)
    except ValueError:
        shown = report_path
    ctx.set_outputs({
        "report-path": str(shown),
        "comment-url": published.comment_urls[0] if published.comment_urls else "",
        "check-url": published.check_url,
        "gates": meta.get("gates", "none"),
    })
    print(f"cml-action: report written to {shown}")
    return EXIT_OK


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
        except ValueError:
            meta = {}
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
