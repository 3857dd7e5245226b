"""runner-teardown: remove the VM(s) and runner(s) of one launch label. Safe to run twice, or after a launch that
failed half-way (then there is simply less to remove)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cml_action.clouds.base import TAG_LABEL, Provider
from cml_action.errors import CloudError, ForgeError, UserError
from cml_action.runners import naming
from cml_action.runners.registry import RunnerRegistry

Log = Callable[[str], None]


@dataclass(frozen=True)
class TeardownResult:
    instances: tuple[str, ...]
    runners: tuple[str, ...]
    preempted: bool
    rerun: bool


def teardown(provider: Provider, registry: RunnerRegistry, label: str, *, retry_on_preemption: bool, run_id: str,
             log: Log) -> TeardownResult:
    if not naming.is_label(label):
        # refuse anything but a launch label: an empty or generic label must never select other machines
        raise UserError(f"--runner-label {label!r} is not a label printed by runner-launch (cml-YYYYMMDDhhmmss-xxxxxx) "
                        "nor one chosen for it (cml-...)")
    deleted, removed, failures = [], [], []
    preempted = False
    for instance in provider.find({TAG_LABEL: label}):
        current = provider.state(instance)
        preempted = preempted or current.preempted
        if current.preempted:
            log(f"{instance.id} was preempted by the cloud while the job ran")
        try:
            provider.delete(instance)  # also for a terminated VM: its secret and role may remain
            if current.state != "terminated":
                deleted.append(instance.id)
                log(f"deleted {instance.id} ({instance.zone})")
        except CloudError as exc:
            failures.append(f"VM {instance.id}: {exc}")
    was_preempted = getattr(provider, "was_preempted", None)  # clouds that delete preempted VMs at once
    if not preempted and was_preempted is not None and was_preempted(label):
        preempted = True
        log(f"the VM of {label} was preempted by the cloud while the job ran")
    for runner in registry.list(label):
        try:
            registry.delete(runner.runner_id)
            removed.append(runner.name)
            log(f"removed runner {runner.name}")
        except ForgeError as exc:
            failures.append(f"runner {runner.name}: {exc}")
    if failures:
        raise CloudError("teardown incomplete (run it again, or runner-sweep): " + "; ".join(failures))
    rerun = False
    if preempted and retry_on_preemption:
        rerun = _rerun(registry, run_id, log)
    if not deleted and not removed:
        log(f"nothing left for {label}: already torn down")
    return TeardownResult(tuple(deleted), tuple(removed), preempted, rerun)


def _rerun(registry: RunnerRegistry, run_id: str, log: Log) -> bool:
    """GitHub re-runs failed jobs only once a run has completed; from inside the same run that is not yet the case,
    so the request goes through a repository_dispatch to a small companion workflow that waits for it."""
    if not run_id:
        log("retry-on-preemption: no workflow run id (GITHUB_RUN_ID) to re-run")
        return False
    completed = getattr(registry, "run_completed", None)
    if completed is not None and not completed(run_id):
        registry.request_rerun_later(run_id)  # type: ignore[attr-defined]
        log(f"retry-on-preemption: run {run_id} is still running; asked the rerun-preempted workflow to re-run its "
            "failed jobs once it completes")
        return True
    registry.rerun_failed_jobs(run_id)
    log(f"re-running the failed jobs of run {run_id} after the preemption")
    return True
