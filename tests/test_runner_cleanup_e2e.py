"""Teardown, sweep and a failed placement when the cloud or the forge refuses part of the cleanup: every other resource
still goes, each failure is one line, the exit code says so, and a capacity error keeps driving the fallback.

The CLI runs as a subprocess against the stand-ins (moto behind the AWS fault proxy, GCE, ARM, GitHub, GitLab)."""

from __future__ import annotations

from pathlib import Path

from test_runners_e2e import (  # noqa: F401 - fixtures
    ADMIN,
    REPO,
    cli,
    cli_env,
    cloud,
    gh,
    launch_args,
    nothing_left,
    outputs,
    teardown_args,
)

from cml_action.runners.github_registry import GitHubRunnerRegistry

ORPHAN = "cml-20250101000000-0a0b0c"


def _launch(gh, cloud, tmp_path: Path, env: dict[str, str]) -> tuple[str, dict]:
    gh.runner_online_after = 0
    out = cli(env, *launch_args(cloud))
    assert out.returncode == 0, out.stderr + out.stdout
    label = outputs(tmp_path)["runner-label"]
    (vm,) = [vm for vm in cloud.instances() if vm["tags"].get("cml-action-label") == label]
    return label, vm


def _clean_failure(out, command: str, count: int) -> list[str]:
    """The failure lines (GitHub error annotations), after checking the shape of a failed cleanup's output."""
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "cml-action: internal error" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("::error::")]
    assert len(lines) == count, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"cml-action: error: {command} incomplete: {count} step(s) failed (listed above); run it again, or let "
        "runner-sweep finish the job")
    return lines


# --- teardown -------------------------------------------------------------------------------------------------------
def test_aws_teardown_a_refused_parameter_delete_still_removes_vm_role_and_runner(gh, aws_cloud, tmp_path: Path):
    env = cli_env(gh, aws_cloud, tmp_path)
    label, vm = _launch(gh, aws_cloud, tmp_path, env)
    aws_cloud.proxy.fail("DeleteParameter", "InternalServerError", "An internal error occurred.", status=500)
    out = cli(env, *teardown_args(aws_cloud, label))
    (line,) = _clean_failure(out, "runner-teardown", 1)
    assert line.startswith(f"::error::VM {vm['id']}: ") and "delete the registration parameter" in line
    assert "InternalServerError" in line
    # the VM, its role and profile, and the runner are gone; only the parameter the cloud refused to delete is left
    assert aws_cloud.leftovers() == [f"SSM parameter /cml-action/{label}/registration"]
    assert gh.runners(REPO) == []
    again = cli(env, *teardown_args(aws_cloud, label))
    assert again.returncode == 0, again.stderr
    nothing_left(gh, aws_cloud)


def test_gcp_teardown_a_refused_vm_delete_still_removes_secret_and_runner(gh, gcp_cloud, tmp_path: Path):
    env = cli_env(gh, gcp_cloud, tmp_path)
    label, vm = _launch(gh, gcp_cloud, tmp_path, env)
    gcp_cloud.standin.inject("DELETE", rf"/instances/{vm['name']}$", 500, times=20,
                             body={"error": {"code": 500, "message": "Internal error. Please try again."}})
    out = cli(env, *teardown_args(gcp_cloud, label))
    (line,) = _clean_failure(out, "runner-teardown", 1)
    assert line.startswith(f"::error::VM {vm['id']}: ") and "Internal error" in line
    assert gcp_cloud.secrets() == {} and gh.runners(REPO) == []
    assert [i["id"] for i in gcp_cloud.instances()] == [vm["id"]]
    gcp_cloud.standin.clear_faults()
    again = cli(env, *teardown_args(gcp_cloud, label))
    assert again.returncode == 0, again.stderr
    nothing_left(gh, gcp_cloud)


def test_gcp_teardown_deletes_the_vm_when_leftovers_cannot_be_listed(gh, gcp_cloud, tmp_path: Path):
    env = cli_env(gh, gcp_cloud, tmp_path)
    label, vm = _launch(gh, gcp_cloud, tmp_path, env)
    gcp_cloud.standin.inject("GET", r"/v1/projects/[^/]+/secrets$", 503, times=20,
                             body={"error": {"code": 503, "message": "The service is currently unavailable."}})
    out = cli(env, *teardown_args(gcp_cloud, label))
    (line,) = _clean_failure(out, "runner-teardown", 1)
    assert line.startswith(f"::error::listing the VMs labelled {label}: listing leftover secrets and service accounts")
    assert f"deleted {vm['id']}" in out.stdout
    nothing_left(gh, gcp_cloud)  # the VM's own secret and account went with it


def test_azure_teardown_deletes_the_group_even_when_its_vm_cannot_be_read(gh, azure_cloud, tmp_path: Path):
    env = cli_env(gh, azure_cloud, tmp_path)
    label, _ = _launch(gh, azure_cloud, tmp_path, env)
    azure_cloud.standin.inject("GET", r"/instanceView$", 500, times=100,
                               body={"error": {"code": "InternalServerError", "message": "Something went wrong."}})
    out = cli(env, *teardown_args(azure_cloud, label))
    assert out.returncode == 0, out.stderr
    assert "could not read the state of" in out.stdout and "Traceback" not in out.stderr
    nothing_left(gh, azure_cloud)


def test_teardown_a_runner_list_500_still_deletes_the_vm_and_is_one_line(gh, cloud, tmp_path: Path):
    env = cli_env(gh, cloud, tmp_path)
    label, _ = _launch(gh, cloud, tmp_path, env)
    gh.inject("GET", r"/actions/runners$", 500, times=20, body={"message": "Server Error"})
    out = cli(env, *teardown_args(cloud, label))
    (line,) = _clean_failure(out, "runner-teardown", 1)
    assert line == (f"::error::listing the runners labelled {label}: GitHub kept failing while trying to list runners: "
                    "too many 500 error responses")
    gh.clear_faults()
    assert cloud.leftovers() == []
    assert cli(env, *teardown_args(cloud, label)).returncode == 0
    nothing_left(gh, cloud)


# --- sweep ----------------------------------------------------------------------------------------------------------
def _two_orphans_and_a_stray_runner(gh, cloud, tmp_path: Path) -> tuple[dict, dict, dict[str, str]]:
    env = cli_env(gh, cloud, tmp_path)
    _, first = _launch(gh, cloud, tmp_path, env)
    _, second = _launch(gh, cloud, tmp_path, env)
    for runner in gh.runners(REPO):  # both runners vanished: both VMs are orphans
        del gh.repos[REPO].runners[runner.id]
    GitHubRunnerRegistry(gh.api_url, REPO, ADMIN).register(ORPHAN, [ORPHAN, f"cml-cloud-{cloud.cloud}"])
    return first, second, {**env, "CML_SWEEP_GRACE": "0"}


def _sweep(cloud, env):
    return cli(env, "runner-sweep", "--cloud", cloud.cloud, "--cloud-region", cloud.region)


def _refuse_delete(cloud, vm: dict) -> None:
    if cloud.cloud == "aws":
        cloud.proxy.fail("TerminateInstances", "InternalError", "An internal error has occurred.", status=500,
                         times=20, params={"InstanceId.1": vm["id"]})
    elif cloud.cloud == "gcp":
        cloud.standin.inject("DELETE", rf"/instances/{vm['name']}$", 500, times=20,
                             body={"error": {"code": 500, "message": "Internal error. Please try again."}})
    else:
        cloud.standin.inject("DELETE", rf"(?i)/resourcegroups/{vm['id']}$", 500, times=200,
                             body={"error": {"code": "InternalServerError", "message": "Something went wrong."}})


def test_sweep_a_refused_vm_delete_does_not_keep_the_other_vm_or_runner(gh, cloud, tmp_path: Path):
    first, second, env = _two_orphans_and_a_stray_runner(gh, cloud, tmp_path)
    _refuse_delete(cloud, first)
    out = _sweep(cloud, env)
    (line,) = _clean_failure(out, "runner-sweep", 1)
    assert line.startswith(f"::error::VM {first['id']} (its runner no longer exists): ")
    assert f"deleted VM {second['id']}" in out.stdout and f"removed runner {ORPHAN}" in out.stdout
    assert [vm["id"] for vm in cloud.instances()] == [first["id"]] and gh.runners(REPO) == []
    (cloud.proxy if cloud.cloud == "aws" else cloud.standin).clear_faults()
    again = _sweep(cloud, env)
    assert again.returncode == 0, again.stderr
    nothing_left(gh, cloud)


def test_sweep_a_runner_delete_500_is_reported_and_the_vms_still_go(gh, aws_cloud, tmp_path: Path):
    _, _, env = _two_orphans_and_a_stray_runner(gh, aws_cloud, tmp_path)
    (stray,) = gh.runners(REPO)
    gh.inject("DELETE", rf"/actions/runners/{stray.id}$", 500, times=20, body={"message": "Server Error"})
    out = _sweep(aws_cloud, env)
    (line,) = _clean_failure(out, "runner-sweep", 1)
    assert line == (f"::error::runner {ORPHAN}: GitHub kept failing while trying to remove runner {stray.id}: too many "
                    "500 error responses")
    assert aws_cloud.leftovers() == [] and [r.name for r in gh.runners(REPO)] == [ORPHAN]


def test_sweep_without_the_runner_list_deletes_no_live_vm(gh, aws_cloud, tmp_path: Path):
    """Not knowing the runners must not read as "every runner is gone": the VMs of live jobs stay."""
    env = cli_env(gh, aws_cloud, tmp_path)
    _launch(gh, aws_cloud, tmp_path, env)
    gh.inject("GET", r"/actions/runners$", 500, times=20, body={"message": "Server Error"})
    out = _sweep(aws_cloud, {**env, "CML_SWEEP_GRACE": "0"})
    (line,) = _clean_failure(out, "runner-sweep", 1)
    assert line == "::error::listing the runners: GitHub kept failing while trying to list runners: too many 500 error responses"
    assert len(aws_cloud.instances()) == 1 and len(gh.runners(REPO)) == 1


# --- a failed placement -----------------------------------------------------------------------------------------------
def _fail_secret_cleanup(cloud) -> None:
    if cloud.cloud == "aws":
        cloud.proxy.fail("DeleteParameter", "InternalServerError", "An internal error occurred.", status=500)
    else:
        cloud.standin.inject("DELETE", r"/secrets/[^/]+$", 500, times=1,
                             body={"error": {"code": 500, "message": "Internal error. Please try again."}})


def test_a_failed_cleanup_of_a_placement_does_not_stop_the_zone_fallback(gh, aws_cloud, gcp_cloud, tmp_path: Path):
    for cloud in (aws_cloud, gcp_cloud):
        env = cli_env(gh, cloud, tmp_path)
        gh.runner_online_after = 0
        from cml_action.clouds import open_provider

        first = open_provider(cloud.cloud, env, cloud.region).zones(cloud.region)[0]
        cloud.fail_capacity(first, times=1)
        _fail_secret_cleanup(cloud)
        out = cli(env, *launch_args(cloud))
        assert out.returncode == 0, out.stderr + out.stdout
        assert "no luck (zone)" in out.stdout and "cleanup: delete the registration" in out.stdout
        (vm,) = cloud.instances()
        assert vm["zone"] != first
        assert cli(env, *teardown_args(cloud, outputs(tmp_path)["runner-label"])).returncode == 0
        nothing_left(gh, cloud)
        (tmp_path / "out.txt").unlink()


def test_gitlab_sweep_a_runner_delete_500_does_not_keep_the_other_runner(gitlab_standin, aws_cloud, tmp_path: Path):
    import os
    import subprocess
    import sys

    from cml_action.ci.context import detect
    from cml_action.runners.gitlab_registry import GitLabRunnerRegistry
    from repo_helpers import ROOT

    gl, token = gitlab_standin, "glpat-runnerAdmin000000"
    gl.add_project(42, "ml/models")
    gl.add_token(token, ("create_runner", "manage_runner", "read_api"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "CML_", "AWS_"))}
    env.update({**aws_cloud.env, "GITLAB_CI": "true", "CI_API_V4_URL": gl.api_url, "CI_SERVER_URL": gl.server_url,
                "CI_PROJECT_ID": "42", "CI_PROJECT_PATH": "ml/models", "CML_TOKEN": token, "CML_SWEEP_GRACE": "0",
                "CML_RETRY_BACKOFF": "0.01"})
    registry = GitLabRunnerRegistry(detect(env, tmp_path), token)
    stuck, gone = ("cml-20250101000000-0a0b0c", "cml-20250101000000-0d0e0f")  # runners whose VMs never came
    ids = {name: registry.register(name, [name, "cml-cloud-aws"]).runner_id for name in (stuck, gone)}
    gl.inject("DELETE", rf"/runners/{ids[stuck]}$", 500, body={"message": "500 Internal Server Error"}, times=5)
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-sweep", "--cloud", "aws",
                          "--cloud-region", aws_cloud.region], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and f"removed runner {gone}" in out.stdout
    failures = [line for line in out.stderr.splitlines() if line.startswith("cml-action: error: ")]
    assert failures == [f"cml-action: error: runner {stuck}: GitLab refused to delete runner {ids[stuck]}: 500 "
                        "500 Internal Server Error",
                        "cml-action: error: runner-sweep incomplete: 1 step(s) failed (listed above); run it again, or "
                        "let runner-sweep finish the job"]
    assert [r.description for r in gl.runners.values()] == [stuck]
