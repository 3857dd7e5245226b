"""runner-launch: one VM, one just-in-time runner, one job; nothing left behind when anything fails.

Order of work, chosen so that every failure has an owner:
1. register the runner (nothing billable yet);
2. try placements (spot first if asked, each type in order, each zone in order) until one VM exists;
3. wait for the runner to come online, watching the VM as well.
Any exception, Ctrl-C or SIGTERM in between deletes the VM(s) found by the launch label and the runner.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from cml_action.clouds.base import (
    TAG_EXPIRES,
    TAG_LABEL,
    TAG_REPO,
    TAG_RUNNER,
    CapacityError,
    Instance,
    MachineSpec,
    Placement,
    Provider,
)
from cml_action.errors import CloudError, CmlError, UserError
from cml_action.failures import Failures, one_line
from cml_action.runners import naming, startup
from cml_action.runners.registry import RunnerRegistry
from cml_action.signals import signals_ignored, sigterm_unwinds

Log = Callable[[str], None]


@dataclass(frozen=True)
class LaunchRequest:
    cloud: str
    region: str
    repository: str
    forge: str  # github | gitlab
    forge_url: str = ""
    zones: tuple[str, ...] = ()
    types: tuple[str, ...] = ("m",)
    gpu: str = "none"
    gpu_count: int = 1
    spot: bool = False
    spot_fallback: bool = False
    image: str = ""
    disk_gb: int = 100
    subnet: str = ""
    permission_set: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    idle_timeout_s: int = 300
    max_lifetime_s: int = 12 * 3600
    boot_timeout_s: int = 15 * 60
    poll_s: float = 5.0
    label: str = ""  # chosen by the caller (validated); "" = the generated runner name
    package: startup.Package | None = None  # a mirror of the runner package; None = the pinned upstream one


@dataclass(frozen=True)
class Launched:
    label: str
    name: str
    instances: tuple[Instance, ...]


def cleanup(provider: Provider, registry: RunnerRegistry, label: str, runner_id: str | None, log: Log) -> list[str]:
    """Delete every VM carrying the launch label (also half-created ones) and the runner; return what failed."""
    failures = Failures()
    with signals_ignored():
        _, instances = failures.attempt(f"listing VMs labelled {label}", lambda: provider.find({TAG_LABEL: label}))
        for instance in instances or []:
            ok, _ = failures.attempt(f"VM {instance.id}", lambda: provider.delete(instance))
            if ok:
                log(f"deleted {instance.id} ({instance.zone or 'no zone'})")
        if runner_id is not None:
            ok, _ = failures.attempt(f"runner {runner_id}", lambda: registry.delete(runner_id))
            if ok:
                log(f"removed runner {runner_id}")
    return failures.lines


def placements(provider: Provider, request: LaunchRequest) -> Iterator[Placement]:
    """Spot (if asked) before on-demand; within that, types in the user's order; within a type, zones in order."""
    zones = list(request.zones) or provider.zones(request.region)
    if not zones:
        raise CloudError(f"no zones found in region {request.region}")
    markets = [True, False] if request.spot and request.spot_fallback else [request.spot]
    for spot in markets:
        for generic in request.types:
            native = provider.native_type(generic, request.gpu, request.gpu_count)
            for zone in zones:
                yield Placement(zone=zone, machine_type=native, spot=spot)


def place(provider: Provider, spec: MachineSpec, request: LaunchRequest, log: Log) -> Instance:
    attempts: list[str] = []
    skip_region_for: set[tuple[bool, str]] = set()
    skip_type: set[tuple[bool, str]] = set()
    for placement in placements(provider, request):
        key = (placement.spot, placement.machine_type)
        if key in skip_type or key in skip_region_for:
            continue
        market = "spot" if placement.spot else "on-demand"
        log(f"trying {placement.machine_type} {market} in {placement.zone or 'the region (no zones)'}")
        try:
            return provider.create(spec, placement)
        except CapacityError as exc:
            attempts.append(f"{placement.zone} {placement.machine_type} {market}: {exc}")
            log(f"  no luck ({exc.scope}): {exc}")
            for note in getattr(exc, "__notes__", ()):  # a cleanup of this attempt that failed: retried by label
                log(f"  {note}")
            if exc.scope == "cloud":
                break
            if exc.scope == "type":
                skip_type.add(key)
            elif exc.scope == "region":
                skip_region_for.add(key)  # a regional quota: the other zones of the region cannot help
    tried = "; ".join(attempts) or "no placement was possible"
    raise CloudError(f"could not create a VM after {len(attempts)} attempt(s): {tried}")


def wait_online(provider: Provider, registry: RunnerRegistry, runner_id: str, instance: Instance,
                request: LaunchRequest, log: Log) -> None:
    deadline = time.monotonic() + request.boot_timeout_s
    polls = 0
    while True:
        info = registry.get(runner_id)
        if info is not None and info.online:
            log(f"runner {info.name} is online")
            return
        if info is None:
            raise CloudError(f"runner {runner_id} disappeared from the forge before it came online")
        polls += 1
        noun = getattr(provider, "machine_noun", "VM")
        if polls % 3 == 0:
            current = provider.state(instance)
            if current.state in ("stopping", "stopped", "terminated", "missing"):
                why = "preempted" if current.preempted else current.state
                raise CloudError(f"the {noun} {instance.id} is {why} before its runner came online"
                                 + (_diagnosis(provider, instance) or
                                    " (look at the VM's console/serial output for the bootstrap log)"))
        if time.monotonic() >= deadline:
            raise CloudError(f"the runner did not come online within {request.boot_timeout_s}s "
                             f"(runner-boot-timeout); the {noun} and the runner were removed"
                             + _diagnosis(provider, instance))
        time.sleep(request.poll_s)


def _diagnosis(provider: Provider, instance: Instance) -> str:
    """The cloud's own words on why the machine has no runner (Kubernetes: the scheduler's message), if it has any."""
    explain = getattr(provider, "explain", None)
    if explain is None:
        return ""
    try:
        text = explain(instance)
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the failure it explains
        return ""
    return f": {text}" if text else ""


def launch(provider: Provider, registry: RunnerRegistry, request: LaunchRequest, log: Log) -> Launched:
    now = datetime.now(timezone.utc)
    name = naming.new_name(now)
    expires = now + timedelta(seconds=request.max_lifetime_s)
    label = request.label or name
    tags = {**request.tags, TAG_RUNNER: name, TAG_LABEL: label, TAG_REPO: request.repository,
            TAG_EXPIRES: expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
    labels = [label, naming.cloud_label(request.cloud), *request.labels]
    runner_id: str | None = None
    with sigterm_unwinds():
        try:
            registration = registry.register(name, labels)
            runner_id = registration.runner_id
            log(f"registered runner {name} (labels: {', '.join(labels)})")
            spec = MachineSpec(name=name, region=request.region, gpu=request.gpu, gpu_count=request.gpu_count,
                               image=request.image, disk_gb=request.disk_gb, subnet=request.subnet,
                               permission_set=request.permission_set, tags=tags, startup_script="",
                               secret=registration.secret, max_lifetime_s=request.max_lifetime_s,
                               forge=request.forge, forge_url=request.forge_url, idle_timeout_s=request.idle_timeout_s)
            script = startup.render(forge=request.forge, name=name, idle_timeout_s=request.idle_timeout_s,
                                    max_lifetime_s=request.max_lifetime_s, secret_snippet=provider.secret_snippet(spec),
                                    poweroff_snippet=provider.poweroff_snippet(spec), forge_url=request.forge_url,
                                    package=request.package)
            spec = replace(spec, startup_script=script)
            instance = place(provider, spec, request, log)
            log(f"created {instance.id} in {instance.zone}; waiting for the runner (up to {request.boot_timeout_s}s)")
            wait_online(provider, registry, runner_id, instance, request, log)
            return Launched(label, name, (instance,))
        except BaseException as exc:
            reason = "cancelled" if isinstance(exc, KeyboardInterrupt) else str(exc) or type(exc).__name__
            log(f"launch failed ({reason}); removing what was created")
            failures = cleanup(provider, registry, label, runner_id, log)
            for line in failures:
                print(f"cml-action: error: cleanup incomplete: {line}", file=sys.stderr, flush=True)
            if failures:
                print("cml-action: error: remove those by hand, or run runner-teardown / runner-sweep", file=sys.stderr)
            if isinstance(exc, Exception) and not isinstance(exc, CmlError):
                raise CloudError(f"launch failed: {one_line(exc)}") from None  # an SDK's error: one line, no traceback
            raise


def poll_interval(env: dict[str, str] | os._Environ) -> float:
    try:
        return float(env.get("CML_POLL_INTERVAL", "5"))
    except ValueError:
        raise UserError("CML_POLL_INTERVAL must be a number of seconds") from None
