"""Checks that run before training: a mistake found after an hour of GPU time is an hour lost."""

from __future__ import annotations

import argparse
from pathlib import Path

from cml_action.ci.context import CIContext
from cml_action.errors import UserError
from cml_action.options import parse_duration
from cml_action.workspace_files import mark_output


def output_dir(args: argparse.Namespace, workspace: Path) -> Path:
    """`--output-dir` inside the workspace (not the workspace itself, not .git): everything in it may be
    published, and a path outside would let a report write anywhere."""
    root = workspace.resolve()
    out = (root / args.output_dir).resolve()
    if out == root or root not in out.parents:
        raise UserError(f"--output-dir {args.output_dir}: must be a folder inside the workspace ({root})")
    if ".git" in out.relative_to(root).parts:
        raise UserError(f"--output-dir {args.output_dir}: must not be inside .git/")
    mark_output(out)
    return out


def check_baseline(args: argparse.Namespace, ctx: CIContext, workspace: Path) -> None:
    """An explicit `--baseline` that does not exist is a typo to fix now (exit 2), not a note after training."""
    option = (getattr(args, "baseline", "") or "").strip()
    if not option or option.lower() == "none":
        return
    from cml_action.gitrefs import is_repo, resolve_baseline

    if not is_repo(workspace):
        raise UserError(f"--baseline {option}: the workspace is not a git repository")
    for ref in option.replace(",", " ").split():  # several refs may be named (`main v1.2.0`): each must exist
        baseline, _ = resolve_baseline(ref, ctx, workspace)
        if baseline is None:
            raise UserError(f"--baseline {ref}: no such branch, tag or commit (also looked for origin/{ref})")


def timeout_s(args: argparse.Namespace) -> int:
    """`--timeout` in seconds, 0 for none."""
    text = (getattr(args, "timeout", "") or "").strip()
    if not text or text.lower() in ("0", "none"):
        return 0
    return parse_duration("timeout", text)
