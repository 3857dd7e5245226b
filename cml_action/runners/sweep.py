"""runner-sweep: reconcile VMs and runners in both directions, for a cron workflow.

The VMs already kill themselves; the sweep is the outside guarantee for when they cannot (a broken image, a
stuck kernel) and for runners whose VM is gone. A VM is removed when its expiry tag has passed, or when it is
older than the boot grace period and its runner no longer exists. A runner of ours is removed when no VM
carries its name and it is older than the grace period (launch registers the runner before the VM exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from cml_action.clouds.base import TAG_EXPIRES, TAG_REPO, TAG_RUNNER, Provider
from cml_action.runners import naming
from cml_action.runners.registry import RunnerRegistry

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


def sweep(provider: Provider, registry: RunnerRegistry, *, cloud: str, repository: str, grace_s: int, log: Log,
          now: datetime | None = None) -> SweepResult:
    now = now or datetime.now(timezone.utc)
    grace = timedelta(seconds=grace_s)
    instances = [i for i in provider.find({TAG_REPO: repository}) if i.state not in GONE]
    ours = [r for r in registry.list(naming.cloud_label(cloud)) if naming.is_launch_label(r.name)]
    runner_names = {r.name for r in ours}
    removed_vms: list[str] = []
    for instance in instances:
        name = instance.tags.get(TAG_RUNNER, "")
        born = instance.created_at or naming.created_at(name)
        expires = _expiry(instance.tags.get(TAG_EXPIRES, ""))
        reason = ""
        if expires is not None and expires <= now:
            reason = f"expired at {expires:%Y-%m-%d %H:%M}Z"
        elif name not in runner_names and (born is None or now - born > grace):
            reason = "its runner no longer exists"
        elif instance.state == "missing" and (born is None or now - born > grace):
            reason = "left over from a failed launch"
        if reason:
            provider.delete(instance)
            removed_vms.append(instance.id)
            log(f"deleted VM {instance.id} ({name or 'no runner name'}): {reason}")
    live_names = {i.tags.get(TAG_RUNNER, "") for i in instances if i.id not in removed_vms}
    removed_runners: list[str] = []
    for runner in ours:
        born = naming.created_at(runner.name)
        if runner.name in live_names or runner.busy or (born is not None and now - born <= grace):
            continue
        registry.delete(runner.runner_id)
        removed_runners.append(runner.name)
        log(f"removed runner {runner.name}: its VM is gone")
    if not removed_vms and not removed_runners:
        log("nothing to sweep")
    return SweepResult(tuple(removed_vms), tuple(removed_runners))
