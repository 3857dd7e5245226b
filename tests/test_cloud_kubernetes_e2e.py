"""`cloud: kubernetes` end to end: the CLI as a subprocess, the official client against the Kubernetes stand-in
(every object checked against Kubernetes' schemas), GitHub and GitLab on their stand-ins. The stand-in's kubelet
runs the pod's own command with a stub runner, so one job, the idle timeout and the lifetime are what the pod
really does. After each test: no pod, no Secret, no runner."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repo_helpers import ROOT
from standins.kubernetes.fixture import NAMESPACE, Node
from test_runners_e2e import ADMIN, REPO, cli, cli_env, outputs

PID = 42
GL_TOKEN = "glpat-runnerAdminToken00000"


@pytest.fixture()
def gh(github_standin):
    github_standin.add_repo(REPO)
    github_standin.add_token(ADMIN, {"administration": "write", "actions": "write", "contents": "write",
                                     "metadata": "read"})
    return github_standin


@pytest.fixture()
def k8s(kubernetes_cloud, gh):
    """The cluster has a T4 node; a pod's runner shows up online on GitHub once its process started."""
    kubernetes_cloud.add_gpu_node()
    kubernetes_cloud.when_runner_starts(lambda name, args: gh.set_runner(REPO, name, "online"))
    return kubernetes_cloud


def launch(env: dict[str, str], *extra: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return cli(env, "runner-launch", "--cloud", "kubernetes", "--cloud-gpu", "t4", "--runner-boot-timeout", "30s",
               *extra, timeout=timeout)


def teardown(env: dict[str, str], label: str) -> subprocess.CompletedProcess:
    return cli(env, "runner-teardown", "--cloud", "kubernetes", "--runner-label", label)


def nothing_left(k8s, runners: list) -> None:
    assert k8s.leftovers() == []
    assert runners == []


def wait_phase(k8s, name: str, phases: tuple[str, ...] = ("Succeeded", "Failed"), timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = k8s.standin.pod(NAMESPACE, name)
        if pod and pod["status"]["phase"] in phases:
            return pod
        time.sleep(0.05)
    raise AssertionError(f"pod {name} never reached {phases}: {k8s.standin.pod(NAMESPACE, name)}")


def termination(pod: dict) -> dict:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]


def check_pod_as_sent(sent: dict, label: str, lifetime_s: int) -> None:
    spec = sent["spec"]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == lifetime_s
    labels = sent["metadata"]["labels"]
    assert labels["cml-action-label"] == label == labels["cml-action-runner"] and labels["cml-action-repo"] == "octo_models"
    assert json.loads(sent["metadata"]["annotations"]["cml-action/tags"])["cml-action-repo"] == REPO
    (container,) = spec["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # the job's steps run in our GPU image (the CLI, Python, CUDA), into which the vendor's runner is copied
    assert container["image"] == "ghcr.io/cml-action/cml-action:v1-gpu"
    assert [c["image"] for c in spec["initContainers"]] == ["ghcr.io/actions/actions-runner:2.337.0",
                                                            "ghcr.io/cml-action/cml-action:v1-gpu"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["Tesla-T4"]} in \
        [e for t in terms for e in t["matchExpressions"]]
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False


def test_one_job_on_a_gpu_pod_then_teardown_leaves_nothing(gh, k8s, tmp_path: Path):
    k8s.runner_mode("job")
    env = cli_env(gh, k8s, tmp_path)
    out = launch(env, "--runner-labels", "gpu", "--runner-max-lifetime", "2h")
    assert out.returncode == 0, out.stderr + out.stdout
    label = outputs(tmp_path)["runner-label"]
    (runner,) = gh.runners(REPO)
    assert runner.labels == [label, "cml-cloud-kubernetes", "gpu"]
    (kind, sent), (secret_kind, secret) = k8s.standin.received
    assert (kind, secret_kind) == ("Pod", "Secret")
    check_pod_as_sent(sent, label, 7200)
    # the JIT config: only in the Secret, which the pod owns; never in the pod spec, arguments or environment
    assert runner.jit_config not in json.dumps(sent) and ADMIN not in json.dumps(sent)
    assert base64.b64decode(secret["data"]["registration"]).decode() == runner.jit_config
    pod = k8s.standin.pod(NAMESPACE, label)
    assert secret["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": label,
                                                      "uid": pod["metadata"]["uid"]}]
    # the runner got it on the side, and the handed-over copy is gone
    pod = wait_phase(k8s, label)
    assert pod["status"]["phase"] == "Succeeded"
    assert termination(pod)["message"] == "runner exited with status 0 after its job"
    recorded = k8s.runner_files(label)
    assert recorded["runner-args"].split() == ["--jitconfig", runner.jit_config]
    assert runner.jit_config not in recorded["runner-env"]
    assert not list((k8s.standin.sandbox(pod) / "volumes" / "handover").iterdir())
    out = teardown(env, label)
    assert out.returncode == 0, out.stderr
    nothing_left(k8s, gh.runners(REPO))
    again = teardown(env, label)
    assert again.returncode == 0 and "already torn down" in again.stdout


def test_no_job_within_the_idle_timeout_ends_the_pod(gh, k8s, tmp_path: Path):
    env = cli_env(gh, k8s, tmp_path)
    out = launch(env, "--runner-idle-timeout", "1s")
    assert out.returncode == 0, out.stderr + out.stdout
    label = outputs(tmp_path)["runner-label"]
    pod = wait_phase(k8s, label)
    assert termination(pod)["message"] == "no job started within 1s (runner-idle-timeout)"
    assert pod["spec"]["nodeName"] == "gpu-node-1"  # and its GPU is free again: a second pod fits on the node
    assert teardown(env, label).returncode == 0
    nothing_left(k8s, gh.runners(REPO))


def test_the_cluster_ends_a_pod_at_its_maximum_lifetime(gh, k8s, tmp_path: Path):
    k8s.runner_mode("long")
    env = cli_env(gh, k8s, tmp_path)
    out = launch(env, "--runner-idle-timeout", "1s", "--runner-max-lifetime", "3s")
    assert out.returncode == 0, out.stderr + out.stdout
    label = outputs(tmp_path)["runner-label"]
    pod = wait_phase(k8s, label, timeout=20)
    assert pod["status"]["reason"] == "DeadlineExceeded"  # a running job is not idle, but the deadline wins
    assert teardown(env, label).returncode == 0
    nothing_left(k8s, gh.runners(REPO))


def test_unschedulable_past_the_boot_timeout_reports_the_scheduler_and_leaves_nothing(gh, kubernetes_cloud, tmp_path):
    busy = Node("gpu-node-1", labels={"nvidia.com/gpu.product": "Tesla-T4"}, allocatable={"cpu": "8", "memory": "30Gi",
                                                                                         "nvidia.com/gpu": "0"})
    kubernetes_cloud.add_gpu_node(busy)
    out = launch(cli_env(gh, kubernetes_cloud, tmp_path), "--runner-boot-timeout", "1s")
    assert out.returncode == 1
    error = out.stderr.strip().splitlines()[-1]
    assert "did not come online within 1s" in error and "the pod and the runner were removed" in error
    assert "Unschedulable" in error and "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't " \
        "match Pod's node affinity/selector." in error
    nothing_left(kubernetes_cloud, gh.runners(REPO))


def test_a_tainted_gpu_node_is_tolerated_only_for_its_taint(gh, kubernetes_cloud, tmp_path: Path):
    tainted = Node("gpu-node-1", labels={"nvidia.com/gpu.product": "Tesla-T4"},
                   taints=[{"key": "team", "value": "ml", "effect": "NoSchedule"}],
                   allocatable={"cpu": "8", "memory": "30Gi", "nvidia.com/gpu": "1"})
    kubernetes_cloud.add_gpu_node(tainted)
    kubernetes_cloud.when_runner_starts(lambda name, args: gh.set_runner(REPO, name, "online"))
    env = cli_env(gh, kubernetes_cloud, tmp_path)
    out = launch(env, "--runner-boot-timeout", "1s")
    assert out.returncode == 1 and "had untolerated taint {team: ml}" in out.stderr
    nothing_left(kubernetes_cloud, gh.runners(REPO))
    out = launch(env, "--kubernetes-tolerations", "team=ml:NoSchedule", "--kubernetes-node-selector", "pool=gpu")
    assert out.returncode == 1 and "didn't match Pod's node affinity/selector" in out.stderr
    tainted.labels["pool"] = "gpu"
    out = launch(env, "--kubernetes-tolerations", "team=ml:NoSchedule", "--kubernetes-node-selector", "pool=gpu")
    assert out.returncode == 0, out.stderr
    assert teardown(env, outputs(tmp_path)["runner-label"]).returncode == 0
    nothing_left(kubernetes_cloud, gh.runners(REPO))


def test_sigterm_mid_launch_cleans_up(gh, kubernetes_cloud, tmp_path: Path):
    env = cli_env(gh, kubernetes_cloud, tmp_path)  # no GPU node: the pod stays pending
    proc = subprocess.Popen([sys.executable, str(ROOT / "entrypoint.py"), "runner-launch", "--cloud", "kubernetes",
                             "--cloud-gpu", "t4", "--token", ADMIN], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not (kubernetes_cloud.standin.objects("secrets") and kubernetes_cloud.instances()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kubernetes_cloud.instances(), "the pod was never created"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    nothing_left(kubernetes_cloud, gh.runners(REPO))


def test_sweep_removes_orphaned_and_expired_pods(gh, k8s, tmp_path: Path):
    env = cli_env(gh, k8s, tmp_path)
    assert launch(env).returncode == 0
    orphan = outputs(tmp_path)["runner-label"]
    for runner in gh.runners(REPO):  # its runner vanished (an ephemeral runner removes itself after its job)
        del gh.repos[REPO].runners[runner.id]
    k8s.add_gpu_node(Node("gpu-node-2", labels={"nvidia.com/gpu.product": "Tesla-T4"},
                          allocatable={"cpu": "8", "memory": "30Gi", "nvidia.com/gpu": "1"}))
    assert launch(env, "--runner-max-lifetime", "2s").returncode == 0
    expired = outputs(tmp_path)["runner-label"]
    time.sleep(2.5)
    out = cli({**env, "CML_SWEEP_GRACE": "3600"}, "runner-sweep", "--cloud", "kubernetes")
    assert out.returncode == 0, out.stderr
    assert f"deleted VM {NAMESPACE}/{expired}" in out.stdout and "expired" in out.stdout
    assert f"{orphan}" not in out.stdout  # within its grace period
    out = cli({**env, "CML_SWEEP_GRACE": "0"}, "runner-sweep", "--cloud", "kubernetes")
    assert f"deleted VM {NAMESPACE}/{orphan}" in out.stdout and "its runner no longer exists" in out.stdout
    assert f"removed runner {expired}" in out.stdout
    nothing_left(k8s, gh.runners(REPO))


def test_pods_of_another_namespace_or_repository_are_never_touched(gh, k8s, tmp_path: Path):
    env = cli_env(gh, k8s, tmp_path)
    assert launch(env, "--kubernetes-namespace", "other").returncode == 0
    label = outputs(tmp_path)["runner-label"]
    out = cli(env, "runner-sweep", "--cloud", "kubernetes")
    assert out.returncode == 0 and [p["metadata"]["namespace"] for p in k8s.standin.objects("pods")] == ["other"]
    out = cli(env, "runner-teardown", "--cloud", "kubernetes", "--kubernetes-namespace", "other", "--runner-label", label)
    assert out.returncode == 0, out.stderr
    nothing_left(k8s, gh.runners(REPO))


# --- GitLab ---------------------------------------------------------------------------------------------------
@pytest.fixture()
def gl(gitlab_standin):
    gitlab_standin.add_project(PID, "ml/models")
    gitlab_standin.add_token(GL_TOKEN, ("create_runner", "manage_runner", "read_api"))
    return gitlab_standin


def gitlab_env(gl, k8s) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "CML_", "INPUT_", "KUBE"))}
    return {**base, **k8s.env, "GITLAB_CI": "true", "CI_API_V4_URL": gl.api_url, "CI_SERVER_URL": gl.server_url,
            "CI_PROJECT_ID": str(PID), "CI_PROJECT_PATH": "ml/models", "CI_COMMIT_SHA": "0" * 40,
            "CI_PIPELINE_ID": "31", "CML_TOKEN": GL_TOKEN, "CML_POLL_INTERVAL": "0.05", "CML_RETRY_BACKOFF": "0.01"}


def test_gitlab_one_job_pod_with_the_runner_token_on_the_side(gl, kubernetes_cloud, tmp_path: Path):
    kubernetes_cloud.add_gpu_node()
    kubernetes_cloud.runner_mode("job")

    def online(name: str, args: list[str]) -> None:
        for runner in gl.runners.values():
            if runner.description == name:
                runner.status = "online"
    kubernetes_cloud.when_runner_starts(online)
    env = gitlab_env(gl, kubernetes_cloud)
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-launch", "--cloud", "kubernetes",
                          "--cloud-gpu", "t4", "--runner-boot-timeout", "30s"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    (runner,) = gl.runners.values()
    name = runner.description
    (_, sent), _ = kubernetes_cloud.standin.received
    assert runner.token not in json.dumps(sent)
    assert [c["image"] for c in sent["spec"]["initContainers"]] == ["gitlab/gitlab-runner:v18.5.0",
                                                                    "ghcr.io/cml-action/cml-action:v1-gpu"]
    assert sent["spec"]["containers"][0]["image"] == "ghcr.io/cml-action/cml-action:v1-gpu"  # the job's image, GPUs
    pod = wait_phase(kubernetes_cloud, name)
    assert termination(pod)["message"] == "runner exited with status 0 after its job"
    recorded = kubernetes_cloud.runner_files(name)
    args = recorded["runner-args"].split("\n")
    assert args[:2] == ["run-single", "--url"] and args[2] == gl.server_url and "--max-builds" in args
    assert runner.token not in recorded["runner-args"]  # not on a command line: /proc/*/cmdline is world-readable
    assert f"CI_SERVER_TOKEN={runner.token}" in recorded["runner-env"].splitlines()
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-teardown", "--cloud", "kubernetes",
                          "--runner-label", name], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert kubernetes_cloud.leftovers() == [] and gl.runners == {}


def test_gitlab_boot_timeout_and_sweep_leave_nothing(gl, kubernetes_cloud, tmp_path: Path):
    env = gitlab_env(gl, kubernetes_cloud)
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-launch", "--cloud", "kubernetes",
                          "--cloud-gpu", "a100", "--runner-boot-timeout", "1s"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 1 and "didn't match Pod's node affinity/selector" in out.stderr
    assert kubernetes_cloud.leftovers() == [] and gl.runners == {}
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-sweep", "--cloud", "kubernetes"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and "nothing to sweep" in out.stdout, out.stderr


# --- the workflow examples, run as the runner runs them ------------------------------------------------------
def test_the_github_example_launches_trains_in_the_pod_and_leaves_nothing(gh, k8s, tmp_path: Path):
    from repo_helpers import example_repo, git
    from test_workflow_examples import EXAMPLES, base_env, copier, entrypoint, pr_payload
    from workflow_runner import run_workflow

    k8s.runner_mode("job")
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(REPO, 5, head_sha=head, head_ref="feature", base_ref="main")
    gh.add_token("ghs_workflowTokenForExamples0000000000", {"contents": "write", "pull_requests": "write",
                                                            "issues": "write", "metadata": "read"})
    # in the pod, the image's `cml-action` is this checkout's CLI
    bin_dir = tmp_path / "image-bin"
    bin_dir.mkdir()
    (bin_dir / "cml-action").write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "entrypoint.py"} "$@"\n')
    (bin_dir / "cml-action").chmod(0o755)
    env = {**base_env(gh, tmp_path, "pull_request", pr_payload(5, head), "f" * 40),
           "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"}
    secrets = {"RUNNER_ADMIN_TOKEN": ADMIN, "KUBECONFIG": Path(k8s.env["KUBECONFIG"]).read_text()}
    result = run_workflow(EXAMPLES / "gpu-kubernetes.yml", event_name="pull_request", payload=pr_payload(5, head),
                          base_env=env, checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "w",
                          secrets=secrets)
    logs = "".join(p.read_text() for p in (tmp_path / "w").glob("log-*.txt"))
    assert all(code == 0 for *_, code in result.steps), (result.steps, logs)
    label = result.outputs["launch"]["label"]
    (_, pod), _ = k8s.standin.received
    assert pod["metadata"]["name"] == label and pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any("## GPU report" in c["body"] for c in gh.repos[REPO].comments.values())
    nothing_left(k8s, gh.runners(REPO))


def test_gitlab_no_job_within_the_idle_timeout_ends_the_pod(gl, kubernetes_cloud, tmp_path: Path):
    kubernetes_cloud.add_gpu_node()

    def online(name: str, args: list[str]) -> None:
        for runner in gl.runners.values():
            if runner.description == name:
                runner.status = "online"
    kubernetes_cloud.when_runner_starts(online)
    env = gitlab_env(gl, kubernetes_cloud)
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-launch", "--cloud", "kubernetes",
                          "--cloud-gpu", "t4", "--runner-idle-timeout", "1s"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    (runner,) = gl.runners.values()
    pod = wait_phase(kubernetes_cloud, runner.description)
    assert termination(pod)["message"] == "no job started within 1s (runner-idle-timeout)"
    assert "--wait-timeout\n1\n" in kubernetes_cloud.runner_files(runner.description)["runner-args"]
    out = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "runner-teardown", "--cloud", "kubernetes",
                          "--runner-label", runner.description], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert kubernetes_cloud.leftovers() == [] and gl.runners == {}


def test_gitlab_sigterm_mid_launch_cleans_up(gl, kubernetes_cloud, tmp_path: Path):
    env = gitlab_env(gl, kubernetes_cloud)  # no GPU node: the pod stays pending
    proc = subprocess.Popen([sys.executable, str(ROOT / "entrypoint.py"), "runner-launch", "--cloud", "kubernetes",
                             "--cloud-gpu", "t4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not kubernetes_cloud.standin.objects("secrets") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kubernetes_cloud.instances() and gl.runners, "the pod was never created"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert kubernetes_cloud.leftovers() == [] and gl.runners == {}


def test_a_native_gpu_product_keeps_its_case(gh, kubernetes_cloud, tmp_path: Path):
    kubernetes_cloud.add_gpu_node(Node("h200", labels={"nvidia.com/gpu.product": "NVIDIA-H200"},
                                       allocatable={"cpu": "64", "memory": "1Ti", "nvidia.com/gpu": "8"}))
    kubernetes_cloud.when_runner_starts(lambda name, args: gh.set_runner(REPO, name, "online"))
    env = cli_env(gh, kubernetes_cloud, tmp_path)
    out = cli(env, "runner-launch", "--cloud", "kubernetes", "--cloud-gpu", "NVIDIA-H200", "--cloud-gpu-count", "8")
    assert out.returncode == 0, out.stderr
    (pod,) = kubernetes_cloud.standin.objects("pods")
    assert pod["spec"]["nodeName"] == "h200"
    assert teardown(env, outputs(tmp_path)["runner-label"]).returncode == 0
    nothing_left(kubernetes_cloud, gh.runners(REPO))


def test_a_preempted_pod_re_runs_the_job_when_asked(gh, k8s, tmp_path: Path):
    env = cli_env(gh, k8s, tmp_path)
    assert launch(env).returncode == 0
    label = outputs(tmp_path)["runner-label"]
    (pod,) = k8s.instances()
    k8s.set_state(pod["id"], "terminated", preempted=True)  # DisruptionTarget: PreemptionByScheduler
    gh.add_run(REPO, 4242, conclusion="failure")
    out = cli(env, "runner-teardown", "--cloud", "kubernetes", "--runner-label", label, "--retry-on-preemption", "true")
    assert out.returncode == 0, out.stderr
    assert "preempted" in out.stdout and gh.repos[REPO].reruns == [4242]
    nothing_left(k8s, gh.runners(REPO))
