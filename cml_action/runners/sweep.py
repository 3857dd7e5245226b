"""runner-sweep: reconcile VMs and runners in both directions, for a cron workflow.

The VMs already kill themselves; the sweep is the outside guarantee for when they cannot (a broken image, a
stuck kernel) and for runners whose VM is gone. A VM is removed when its expiry tag has passed, or when it is
older than the boot grace period and its runner no longer exists. A runner of ours is removed when no VM
carries its name and it is older than the grace period (launch registers the runner before the VM exists).

Every resource gets its try and all failures are reported at the end. What the sweep could not see it does not
guess: without the runner list only expired VMs go; without the VM list no runner goes (a live job's runner would).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from cml_action.clouds.base import TAG_EXPIRES, TAG_REPO, TAG_RUNNER, Instance, Provider
from cml_action.runners import naming
from cml_action.failures import CleanupIncomplete, Failures
from cml_action.runners.registry import RunnerInfo, RunnerRegistry

Log = Callable[[str], None]
GONE = ("terminated",)  # listed by the cloud for a while, but nothing is billed any more


@dataclass(frozen=True)
class SweepResult:
    instances: tuple[str, ...]
    runners: tuple[str, ...]


def _expiry(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _reason(instance: Instance, runner_names: set[str] | None, now: datetime, grace: timedelta) -> str:
    """Why this VM should go, or "" to keep it. `runner_names` None: the runner list could not be read."""
    name = instance.tags.get(TAG_RUNNER, "")
    born = instance.created_at or naming.created_at(name)
    old = born is None or now - born > grace
    expires = _expiry(instance.tags.get(TAG_EXPIRES, ""))
    if expires is not None and expires <= now:
        return f"expired at {expires:%Y-%m-%d %H:%M}Z"
    if runner_names is not None and name not in runner_names and old:
        return "its runner no longer exists"
    if instance.state == "missing" and old:
        return "left over from a failed launch"
    return ""


def _sweep_vms(provider: Provider, instances: list[Instance], runner_names: set[str] | None, now: datetime,
               grace: timedelta, failures: Failures, log: Log) -> list[str]:
    removed: list[str] = []
    for instance in instances:
        reason = _reason(instance, runner_names, now, grace)
        if not reason:
            continue
        name = instance.tags.get(TAG_RUNNER, "") or "no runner name"
        ok, _ = failures.attempt(f"VM {instance.id} ({reason})", lambda: provider.delete(instance))
        if ok:
            removed.append(instance.id)
            log(f"deleted VM {instance.id} ({name}): {reason}")
    return removed


def _sweep_runners(registry: RunnerRegistry, ours: list[RunnerInfo], live_names: set[str], now: datetime,
                   grace: timedelta, failures: Failures, log: Log) -> list[str]:
    removed: list[str] = []
    for runner in ours:
        born = naming.created_at(runner.name)
        if runner.name in live_names or runner.busy or (born is not None and now - born <= grace):
            continue
        ok, _ = failures.attempt(f"runner {runner.name}", lambda: registry.delete(runner.runner_id))
        if ok:
            removed.append(runner.name)
            log(f"removed runner {runner.name}: its VM is gone")
    return removed


def _inventory(provider: Provider, registry: RunnerRegistry, cloud: str, repository: str, failures: Failures,
               log: Log) -> tuple[list[Instance] | None, list[RunnerInfo], set[str] | None]:
    """Live VMs (None: unreadable), our runners, and their names (None: unreadable)."""
    listed_vms, found = failures.attempt(f"listing the VMs of {repository}", lambda: provider.find({TAG_REPO: repository}))
    instances = [i for i in found or [] if i.state not in GONE] if listed_vms else None
    listed_runners, runners = failures.attempt("listing the runners", lambda: registry.list(naming.cloud_label(cloud)))
    ours = [r for r in runners or [] if naming.is_launch_label(r.name)]
    if not listed_runners:
        log("the runner list could not be read: only expired VMs are deleted this time")
    return instances, ours, ({r.name for r in ours} if listed_runners else None)


def sweep(provider: Provider, registry: RunnerRegistry, *, cloud: str, repository: str, grace_s: int, log: Log,
          now: datetime | None = None) -> SweepResult:
    now = now or datetime.now(timezone.utc)
    grace = timedelta(seconds=grace_s)
    failures = Failures()
    instances, ours, runner_names = _inventory(provider, registry, cloud, repository, failures, log)
    listed_vms = instances is not None
    instances = instances or []
    removed_vms = _sweep_vms(provider, instances, runner_names, now, grace, failures, log)
    removed_runners: list[str] = []
    if listed_vms:
        live_names = {i.tags.get(TAG_RUNNER, "") for i in instances if i.id not in removed_vms}
        removed_runners = _sweep_runners(registry, ours, live_names, now, grace, failures, log)
    elif ours:
        log("the VM list could not be read: no runner is removed this time")
    if failures:
        raise CleanupIncomplete("runner-sweep", failures.lines)
    if not removed_vms and not removed_runners:
        log("nothing to sweep")
    return SweepResult(tuple(removed_vms), tuple(removed_runners))
