"""runner-teardown: remove the VM(s) and runner(s) of one launch label. Safe to run twice, or after a launch that
failed half-way (then there is simply less to remove).

Every resource gets its try: a VM the cloud refuses to delete does not keep the next VM, or the runners, alive. All
failures are reported together at the end (one line each) and the command exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cml_action.clouds.base import TAG_LABEL, Instance, Provider
from cml_action.errors import UserError
from cml_action.runners import naming
from cml_action.failures import CleanupIncomplete, Failures, one_line
from cml_action.runners.registry import RunnerRegistry

Log = Callable[[str], None]


@dataclass(frozen=True)
class TeardownResult:
    instances: tuple[str, ...]
    runners: tuple[str, ...]
    preempted: bool
    rerun: bool


def _current(provider: Provider, instance: Instance, log: Log) -> Instance:
    """The state is only read to notice a preemption; failing to read it must not stop the delete."""
    try:
        return provider.state(instance)
    except Exception as exc:  # noqa: BLE001 - informative only
        log(f"could not read the state of {instance.id} ({one_line(exc)}); deleting it anyway")
        return instance


def _delete_instances(provider: Provider, label: str, failures: Failures, log: Log) -> tuple[list[str], bool]:
    """Delete every VM (and leftover) of the label; return what was deleted and whether one was preempted."""
    deleted: list[str] = []
    preempted = False
    _, instances = failures.attempt(f"listing the VMs labelled {label}", lambda: provider.find({TAG_LABEL: label}))
    for instance in instances or []:
        current = _current(provider, instance, log)
        if current.preempted:
            preempted = True
            log(f"{instance.id} was preempted by the cloud while the job ran")
        ok, _ = failures.attempt(f"VM {instance.id}", lambda: provider.delete(instance))
        if ok and current.state != "terminated":  # a terminated VM is deleted too: its secret and role may remain
            deleted.append(instance.id)
            log(f"deleted {instance.id} ({instance.zone or 'no zone'})")
    return deleted, preempted


def _remove_runners(registry: RunnerRegistry, label: str, failures: Failures, log: Log) -> list[str]:
    removed: list[str] = []
    _, runners = failures.attempt(f"listing the runners labelled {label}", lambda: registry.list(label))
    for runner in runners or []:
        ok, _ = failures.attempt(f"runner {runner.name}", lambda: registry.delete(runner.runner_id))
        if ok:
            removed.append(runner.name)
            log(f"removed runner {runner.name}")
    return removed


def _preempted_elsewhere(provider: Provider, label: str, log: Log) -> bool:
    """Clouds that delete a preempted VM at once keep the trace elsewhere (GCE's zone operations)."""
    was_preempted = getattr(provider, "was_preempted", None)
    if was_preempted is None:
        return False
    try:
        found = bool(was_preempted(label))
    except Exception as exc:  # noqa: BLE001 - a missing answer only means: no re-run
        log(f"could not tell whether the VM of {label} was preempted: {one_line(exc)}")
        return False
    if found:
        log(f"the VM of {label} was preempted by the cloud while the job ran")
    return found


def teardown(provider: Provider, registry: RunnerRegistry, label: str, *, retry_on_preemption: bool, run_id: str,
             log: Log) -> TeardownResult:
    if not naming.is_label(label):
        # refuse anything but a launch label: an empty or generic label must never select other machines
        raise UserError(f"--runner-label {label!r} is not a label printed by runner-launch (cml-YYYYMMDDhhmmss-xxxxxx) "
                        "nor one chosen for it (cml-...)")
    failures = Failures()
    deleted, preempted = _delete_instances(provider, label, failures, log)
    if not preempted:
        preempted = _preempted_elsewhere(provider, label, log)
    removed = _remove_runners(registry, label, failures, log)
    rerun = False
    if preempted and retry_on_preemption:
        ok, asked = failures.attempt("retry-on-preemption", lambda: _rerun(registry, run_id, log))
        rerun = bool(ok and asked)
    if failures:
        raise CleanupIncomplete("runner-teardown", failures.lines)
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
