"""The Kubernetes provider against the stand-in: the README's Role is exactly enough, the pod's command passes
shellcheck, bad input is one line and creates nothing, the in-pod service account works, the pod spec asks for
the GPU the way clusters label it, and the stand-in refuses what a real API server refuses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cloud_helpers import runner_spec
from cml_action.clouds.base import Placement
from cml_action.clouds.kubernetes import ROLE, KubernetesProvider, label_value
from repo_helpers import ROOT
from standins.kubernetes.fixture import NAMESPACE, KubernetesCloud
from standins.kubernetes.server import TOKEN, KubernetesStandIn
from test_cloud_kubernetes_e2e import gh, launch, teardown  # noqa: F401 - the GitHub fixture
from test_runners_e2e import REPO, cli, cli_env, outputs


def readme_manifests() -> list[dict]:
    section = (ROOT / "README.md").read_text().split("## Runners on Kubernetes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if isinstance(doc, dict) and "kind" in doc]


def readme_role() -> dict:
    (role,) = [d for d in readme_manifests() if d["kind"] == "Role"]
    return role


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_readme_rbac_manifests_validate_and_the_role_is_the_codes(version: str):
    manifests = readme_manifests()
    assert {m["kind"] for m in manifests} >= {"Role", "RoleBinding", "ServiceAccount"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)
    assert readme_role() == yaml.safe_load(ROLE)


def test_the_readme_role_is_enough_for_launch_teardown_and_sweep(gh, tmp_path: Path):  # noqa: F811
    cloud = KubernetesCloud(tmp_path, rules=readme_role()["rules"])
    try:
        cloud.add_gpu_node()
        cloud.when_runner_starts(lambda name, args: gh.set_runner(REPO, name, "online"))
        env = cli_env(gh, cloud, tmp_path)
        out = launch(env)
        assert out.returncode == 0, out.stderr
        assert teardown(env, outputs(tmp_path)["runner-label"]).returncode == 0
        out = cli({**env, "CML_SWEEP_GRACE": "0"}, "runner-sweep", "--cloud", "kubernetes")
        assert out.returncode == 0, out.stderr
        assert cloud.standin.denied == [] and cloud.leftovers() == []
        cloud.assert_clean()
    finally:
        cloud.standin.stop()


def test_a_role_without_secrets_fails_the_launch_clearly_and_leaves_nothing(gh, tmp_path: Path):  # noqa: F811
    rules = [r for r in readme_role()["rules"] if "secrets" not in r["resources"]]
    cloud = KubernetesCloud(tmp_path, rules=rules)
    try:
        cloud.add_gpu_node()
        out = launch(cli_env(gh, cloud, tmp_path))
        assert out.returncode == 1 and "Traceback" not in out.stderr
        error = out.stderr.strip().splitlines()[-1]
        assert "Kubernetes refused to store the registration Secret (403)" in error and "the Role in the README" in error
        assert cloud.standin.denied[0] == "create secrets"  # then the cleanup's delete: also refused, not hiding it
        assert cloud.leftovers() == [] and gh.runners(REPO) == []
    finally:
        cloud.standin.stop()


def test_the_pods_commands_as_received_pass_shellcheck(gh, kubernetes_cloud, tmp_path: Path):  # noqa: F811
    assert launch(cli_env(gh, kubernetes_cloud, tmp_path), "--runner-boot-timeout", "1s").returncode == 1
    (_, pod), _ = kubernetes_cloud.standin.received
    containers = pod["spec"]["initContainers"] + pod["spec"]["containers"]
    scripts = [(c["command"][2], "bash" if "bash" in c["command"][0] else "sh") for c in containers
               if c["command"][1:2] == ["-c"]]
    assert len(scripts) == 2
    for number, (script, shell) in enumerate(scripts):
        path = tmp_path / f"command-{number}.sh"
        path.write_text(f"#!/bin/{shell}\n{script}" if not script.startswith("#!") else script)
        assert subprocess.run([shell, "-n", str(path)]).returncode == 0
        out = subprocess.run(["shellcheck", "-s", shell, "-S", "style", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("args, message", [
    (("--kubernetes-tolerations", "gpu=yes:Sometimes"), "--kubernetes-tolerations: expected key[=value]"),
    (("--kubernetes-node-selector", "pool"), "--kubernetes-node-selector: expected key=value"),
    (("--cloud-type", "cpu=lots"), "on Kubernetes use s, m, l, xl or cpu=N,memory=Q"),
    (("--cloud-gpu", "t4 please"), "--cloud-gpu 't4 please': on Kubernetes use none, any"),
    (("--cloud-spot", "true"), "--cloud-spot: on Kubernetes choose spot nodes"),
])
def test_bad_input_is_one_line_and_creates_nothing(gh, kubernetes_cloud, tmp_path: Path, args, message):  # noqa: F811
    out = launch(cli_env(gh, kubernetes_cloud, tmp_path), *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("cml-action: error: ") and message in out.stderr
    assert "Traceback" not in out.stderr
    assert kubernetes_cloud.leftovers() == [] and gh.runners(REPO) == []


def test_no_credentials_is_a_clear_error(gh, tmp_path: Path):  # noqa: F811
    class NoCluster:
        env = {"KUBECONFIG": str(tmp_path / "missing")}

    out = cli(cli_env(gh, NoCluster, tmp_path), "runner-sweep", "--cloud", "kubernetes")
    assert out.returncode == 2 and "no Kubernetes credentials: set KUBECONFIG or run inside the cluster" in out.stderr


def test_inside_the_cluster_the_pods_service_account_is_used(tmp_path: Path):
    standin = KubernetesStandIn()
    standin.start(tls=KubernetesStandIn.self_signed(tmp_path))
    try:
        account = tmp_path / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(TOKEN)
        shutil.copy(tmp_path / "standin.crt", account / "ca.crt")
        (account / "namespace").write_text("runners-here")
        host, port = standin.url.removeprefix("https://").split(":")
        env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
               "CML_KUBE_SERVICEACCOUNT_DIR": str(account)}
        provider = KubernetesProvider(env, "", {})
        assert provider.find({"cml-action-repo": REPO}) == []
        assert provider.namespace == "runners-here"
        (entry,) = standin.requests
        assert entry.path == "/api/v1/namespaces/runners-here/pods" and entry.status == 200
        assert entry.query["labelSelector"] == ["cml-action-repo=octo_models"]
    finally:
        standin.stop()


def _manifest(**changes) -> dict:
    provider = KubernetesProvider({}, "", {"kubernetes_namespace": NAMESPACE,
                                          "kubernetes_tolerations": ["dedicated=ml:NoSchedule"],
                                          "kubernetes_image_pull_secrets": ["registry"]})
    spec = runner_spec("", **changes)
    return provider.pod_manifest(spec, Placement(NAMESPACE, provider.native_type("m", spec.gpu, spec.gpu_count), False))


def test_gpus_become_limits_and_the_clusters_gpu_labels():
    pod = _manifest(gpu="a100", gpu_count=2)
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "16Gi", "nvidia.com/gpu": "2"}
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    by_key = {t["matchExpressions"][0]["key"]: t["matchExpressions"][0]["values"] for t in terms}
    assert "NVIDIA-A100-SXM4-80GB" in by_key["nvidia.com/gpu.product"]  # NVIDIA GPU feature discovery
    assert by_key["cloud.google.com/gke-accelerator"] == ["nvidia-tesla-a100", "nvidia-a100-80gb"]  # GKE
    assert by_key["karpenter.k8s.aws/instance-gpu-name"] == ["a100"]  # Karpenter (EKS)
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    native = _manifest(gpu="NVIDIA-H200")["spec"]["affinity"]["nodeAffinity"]
    assert native["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H200"]}]}]
    assert _manifest(gpu="T4")["spec"]["affinity"] == _manifest(gpu="t4")["spec"]["affinity"]
    anything = _manifest(gpu="any")
    assert "affinity" not in anything["spec"] and anything["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == "1"
    cpu = _manifest(gpu="none")
    assert "nvidia.com/gpu" not in cpu["spec"]["containers"][0]["resources"]["limits"]
    assert cpu["spec"]["containers"][0]["image"] == "ghcr.io/cml-action/cml-action:v1"
    assert cpu["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    identity = _manifest(permission_set="trainer")["spec"]  # cloud-permission-set: the pod's service account
    assert identity["serviceAccountName"] == "trainer" and identity["automountServiceAccountToken"] is True
    for manifest in (pod, anything, cpu):
        kubernetes_validate.validate(manifest, "1.29.0", strict=True)


def test_label_values_stand_for_any_repository_name():
    for text in ("octo/models", "group/sub.group/very-long-project-name-" + "x" * 80, "-odd-/", "2026-11-23T12:00:00Z"):
        value = label_value(text)
        assert len(value) <= 63 and re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value), value
        assert value == label_value(text)
    assert label_value("a/" + "x" * 80) != label_value("a/" + "x" * 79 + "y")  # the hash keeps long names apart


def _raw_create_pod(kubernetes_cloud, body: dict) -> int:
    import json
    import urllib.error
    import urllib.request

    from standins.kubernetes.server import TOKEN

    request = urllib.request.Request(f"{kubernetes_cloud.standin.url}/api/v1/namespaces/{NAMESPACE}/pods",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_standin_refuses_what_an_api_server_refuses(kubernetes_cloud):
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(kubernetes_cloud.env["KUBECONFIG"]))
    good = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    bad = [
        {**good, "spec": {"containers": [{"name": "c", "image": "busybox", "gpus": 1}]}},  # no such field
        {**good, "metadata": {"name": "ok", "labels": {"repo": "octo/models"}}},  # "/" in a label value
        {**good, "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {
            "requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}}]}},  # extended: requests != limits
        {**good, "spec": {"containers": [{"name": "c", "image": "busybox",
                                          "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}]}},
        {**good, "metadata": {"name": "Not_A_Name"}},
    ]
    for body in bad:  # sent as raw JSON: newer clients (37+) refuse unknown fields themselves, before sending
        assert _raw_create_pod(kubernetes_cloud, body) == 400, body
    assert len(kubernetes_cloud.standin.violations) == len(bad)
    kubernetes_cloud.standin.violations.clear()
    api.create_namespaced_pod(NAMESPACE, good)
    api.delete_namespaced_pod("ok", NAMESPACE)
    assert kubernetes_cloud.leftovers() == []


def test_cloud_region_names_the_kubeconfig_context_and_its_namespace(kubernetes_cloud, tmp_path: Path):
    config = yaml.safe_load(Path(kubernetes_cloud.env["KUBECONFIG"]).read_text())
    config["contexts"].append({"name": "team-b", "context": {"cluster": "standin", "user": "launcher",
                                                             "namespace": "team-b"}})
    path = tmp_path / "two-contexts"
    path.write_text(yaml.safe_dump(config))
    assert KubernetesProvider({"KUBECONFIG": str(path)}, "team-b", {}).find({"cml-action-label": "x"}) == []
    assert KubernetesProvider({"KUBECONFIG": str(path)}, "", {}).namespace == NAMESPACE  # the current context's
    assert KubernetesProvider({"KUBECONFIG": str(path)}, "team-b", {"kubernetes_namespace": "c"}).namespace == "c"
    assert [r.path for r in kubernetes_cloud.standin.requests] == ["/api/v1/namespaces/team-b/pods"]
