"""The runner-launch / runner-teardown / runner-sweep commands: CLI arguments in, outputs and one-line logs out."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Mapping

from cml_action.ci.context import CIContext, detect
from cml_action.clouds import open_provider
from cml_action.errors import EXIT_OK, UserError
from cml_action.forges import find_token
from cml_action.options import parse_duration, parse_pairs
from cml_action.failures import CleanupIncomplete
from cml_action.runners import naming, startup
from cml_action.runners.launch import LaunchRequest, launch, poll_interval
from cml_action.runners.registry import RunnerRegistry
from cml_action.runners.sweep import sweep
from cml_action.runners.teardown import teardown

BOOT_GRACE_S = 20 * 60


def _log(message: str) -> None:
    print(f"cml-action: {message}", flush=True)


def _report(ctx: CIContext, exc: CleanupIncomplete) -> None:
    """One line per failure on stderr (an error annotation on GitHub), then the summary raised to the CLI."""
    for line in exc.failures:
        print(f"::error::{line}" if ctx.kind == "github" else f"cml-action: error: {line}", file=sys.stderr, flush=True)


def _context(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[CIContext, str]:
    ctx = detect(env, Path(args.workdir).resolve())
    if ctx.kind == "local":
        raise UserError("runner commands need a forge: set GITHUB_REPOSITORY (and GITHUB_API_URL on GitHub Enterprise) "
                        "or run inside GitLab CI")
    token, _ = find_token(ctx, args.token, env)
    if not token:
        hint = "a PAT or GitHub App token with administration: write" if ctx.kind == "github" else \
            "a token with the create_runner scope in CML_TOKEN"
        raise UserError(f"runner commands need a token: pass --token with {hint}")
    ctx.mask(token)
    return ctx, token


def _registry(ctx: CIContext, token: str, env: Mapping[str, str]) -> RunnerRegistry:
    backoff = float(env.get("CML_RETRY_BACKOFF", "1") or 1)
    if ctx.kind == "github":
        from cml_action.runners.github_registry import GitHubRunnerRegistry

        return GitHubRunnerRegistry(ctx.api_url, ctx.repository, token, backoff=backoff)
    from cml_action.runners.gitlab_registry import GitLabRunnerRegistry

    return GitLabRunnerRegistry(ctx, token)


def _gpu(cloud: str, text: str) -> str:
    """Generic names are case-blind; a Kubernetes node label value (nvidia.com/gpu.product) is not."""
    return text.strip() if cloud.strip().lower() == "kubernetes" else text.lower()


def _chosen_label(text: str) -> str:
    label = (text or "").strip()
    if label and not naming.is_chosen_label(label):
        raise UserError(f"--runner-label {label!r}: a chosen launch label is {naming.CHOSEN_RULE}")
    return label


def _package(env: Mapping[str, str]) -> startup.Package | None:
    """A mirror of the runner package (air-gapped networks, a GitHub Enterprise Server that needs an older runner):
    CML_RUNNER_PACKAGE_URL (https) and CML_RUNNER_PACKAGE_SHA256, which the VM verifies before running anything."""
    url, digest = env.get("CML_RUNNER_PACKAGE_URL", "").strip(), env.get("CML_RUNNER_PACKAGE_SHA256", "").strip().lower()
    if not url and not digest:
        return None
    if not url.startswith("https://") or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise UserError("CML_RUNNER_PACKAGE_URL (an https URL) and CML_RUNNER_PACKAGE_SHA256 (64 hex digits) go together")
    return startup.Package(url, digest)


def launch_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    idle = parse_duration("runner-idle-timeout", args.runner_idle_timeout)
    lifetime = parse_duration("runner-max-lifetime", args.runner_max_lifetime)
    boot = parse_duration("runner-boot-timeout", args.runner_boot_timeout)
    if args.cloud_gpu_count < 1:
        raise UserError("--cloud-gpu-count must be at least 1")
    if args.cloud_disk_size < 10:
        raise UserError("--cloud-disk-size must be at least 10 (GB)")
    ctx, token = _context(args, env)
    provider = open_provider(args.cloud, env, args.cloud_region, vars(args))
    request = LaunchRequest(
        cloud=args.cloud.lower(), region=args.cloud_region, repository=ctx.repository, forge=ctx.kind,
        forge_url=ctx.server_url, zones=tuple(args.cloud_zone), types=tuple(args.cloud_type) or ("m",),
        gpu=_gpu(args.cloud, args.cloud_gpu), gpu_count=args.cloud_gpu_count, spot=args.cloud_spot,
        spot_fallback=args.cloud_spot_fallback, image=args.cloud_image, disk_gb=args.cloud_disk_size,
        subnet=args.cloud_subnet, permission_set=args.cloud_permission_set, tags=parse_pairs("cloud-tags", args.cloud_tags),
        labels=tuple(args.runner_labels), idle_timeout_s=idle, max_lifetime_s=lifetime, boot_timeout_s=boot,
        poll_s=poll_interval(env), label=_chosen_label(args.runner_label), package=_package(env),
    )
    launched = launch(provider, _registry(ctx, token, env), request, _log)
    ctx.set_outputs({"runner-label": launched.label, "runner-name": launched.name,
                     "instance-ids": " ".join(i.id for i in launched.instances)})
    select = f"runs-on: [self-hosted, {launched.label}]" if ctx.kind == "github" else f"tags: [{launched.label}]"
    print(f"cml-action: runner {launched.name} is online; use {select}")
    return EXIT_OK


def teardown_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    ctx, token = _context(args, env)
    label = (args.runner_label or "").strip()
    if ctx.kind == "github" and ctx.event_name == "repository_dispatch" and ctx.event.get("action") == "cml-action-rerun":
        return _rerun_when_completed(ctx, token, env)
    provider = open_provider(args.cloud, env, args.cloud_region, vars(args))
    run_id = ctx.run_id
    run = ctx.event.get("workflow_run") if ctx.event else None
    if run and run.get("id"):
        run_id = str(run["id"])  # the workflow_run companion re-runs the run that was preempted
    try:
        result = teardown(provider, _registry(ctx, token, env), label, retry_on_preemption=args.retry_on_preemption,
                          run_id=run_id, log=_log)
    except CleanupIncomplete as exc:
        _report(ctx, exc)
        raise
    if result.preempted and not args.retry_on_preemption:
        ctx.warning(f"the VM of {label} was preempted while the job ran; set retry-on-preemption: true to re-run it")
    return EXIT_OK


def _rerun_when_completed(ctx: CIContext, token: str, env: Mapping[str, str]) -> int:
    """The companion half of retry-on-preemption: wait for the preempted run to finish, then re-run its failed jobs."""
    from cml_action.runners.github_registry import GitHubRunnerRegistry

    run_id = str((ctx.event.get("client_payload") or {}).get("run_id", ""))
    if not run_id.isdigit():
        raise UserError("repository_dispatch cml-action-rerun without a numeric client_payload.run_id")
    registry = _registry(ctx, token, env)
    assert isinstance(registry, GitHubRunnerRegistry)
    if registry.wait_and_rerun(run_id, timeout_s=6 * 3600, poll_s=max(poll_interval(env), 0.01) * 6):
        _log(f"re-running the failed jobs of run {run_id} (its runner was preempted)")
        return EXIT_OK
    _log(f"run {run_id} did not complete within 6 hours; not re-run")
    return EXIT_OK


def sweep_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    ctx, token = _context(args, env)
    provider = open_provider(args.cloud, env, args.cloud_region, vars(args))
    grace = int(env.get("CML_SWEEP_GRACE", BOOT_GRACE_S))
    try:
        result = sweep(provider, _registry(ctx, token, env), cloud=args.cloud.lower(), repository=ctx.repository,
                       grace_s=grace, log=_log)
    except CleanupIncomplete as exc:
        _report(ctx, exc)
        raise
    print(f"cml-action: swept {len(result.instances)} VM(s) and {len(result.runners)} runner(s)", file=sys.stdout)
    return EXIT_OK
