"""Sources of report content, each one module behind `Source.collect(job) -> Contribution`.

`choose` is the one place that maps options to sources: a new source is one module plus one line here.
Sources that act around training (DVC's pull/repro/push) also implement `TrainingHooks`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cml_action.sources.base import Contribution, Job, Problems, Source

if TYPE_CHECKING:
    from cml_action.ci.context import CIContext
    from cml_action.train import TrainResult

__all__ = ["Contribution", "Job", "Problems", "Source", "TrainingHooks", "choose", "collect"]


@runtime_checkable
class TrainingHooks(Protocol):
    def before_training(self, ctx: CIContext, env: Mapping[str, str]) -> Contribution: ...

    def train(self, ctx: CIContext, env: Mapping[str, str]) -> TrainResult | None: ...

    def after_training(self, ctx: CIContext, env: Mapping[str, str], training: TrainResult | None) -> Contribution: ...


def _dvc(args: argparse.Namespace, workspace: Path) -> Source | None:
    """DVC mode: a DVC project (and DVC installed, it is an optional extra). Its declarations are the
    content unless the user named files; its commands run on `run` only."""
    if not (workspace / "dvc.yaml").exists():
        return None
    from cml_action import preflight
    from cml_action.sources import dvc

    if not dvc.is_dvc_project(workspace):
        return None
    run = args.command == "run"
    return dvc.DvcSource(declarations=not (args.metrics or args.params or args.plots),
                         pull=run and bool(getattr(args, "dvc_pull", False)),
                         repro=run and bool(getattr(args, "dvc_repro", False)) and not args.run,
                         push=run and bool(getattr(args, "dvc_push", False)),
                         timeout_s=preflight.timeout_s(args))


def choose(args: argparse.Namespace, workspace: Path) -> list[Source]:
    from cml_action.sources.files import FileSource
    from cml_action.sources.markdown import MarkdownSource
    from cml_action.sources.notebooks import NotebookSource
    from cml_action.sources.tensorboard import TensorBoardSource

    dvc = _dvc(args, workspace)
    sources: list[Source | None] = [
        MarkdownSource(args.report) if args.report else None,
        dvc,
        FileSource(args.metrics, args.params, args.plots) if dvc is None or not dvc.declarations else None,
        TensorBoardSource(args.tensorboard) if args.tensorboard else None,
        NotebookSource() if args.notebook_diff else None,
    ]
    return [s for s in sources if s is not None]


def collect(sources: list[Source], job: Job) -> Contribution:
    """Every source's contribution, in the order chosen."""
    total = Contribution()
    for source in sources:
        total.extend(source.collect(job))
    return total
