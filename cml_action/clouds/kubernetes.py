"""Kubernetes through the official `kubernetes` client, imported only when used: one pod per job.

The pod is the machine. `restartPolicy: Never` and a command that exits after one job (or after the idle timeout)
make the pod end, and its GPUs return to the cluster, as soon as the job is done; `activeDeadlineSeconds` makes
the cluster itself end it at the maximum lifetime. Labels `cml-action-runner`, `cml-action-label`,
`cml-action-repo` and `cml-action-expires` (values made label-safe; the exact tags ride in an annotation) let
teardown and sweep find every pod.

Secret hand-over: the one-job registration is a Secret created after the pod, owned by it (ownerReference: the
garbage collector deletes it with the pod, or at once if the pod is already gone), and mounted only into an init
container that copies it into a memory-backed emptyDir; the runner container reads that copy once and deletes it.
It is never in the pod spec, its arguments or its environment. teardown also deletes the Secret itself, so nothing
waits for the garbage collector.

Capacity: the cluster's scheduler (and its autoscaler) decides where the pod runs, so there is nothing to fail
over between; the launch waits up to the boot timeout, then reports the scheduler's own reason (`0/3 nodes are
available: 3 Insufficient nvidia.com/gpu`) and removes the pod. A ResourceQuota refusal is a capacity error.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import datetime
from hashlib import sha256
from importlib import resources
from typing import Any, Callable, Mapping, TypeVar

from cml_action.clouds.base import (
    TAG_RUNNER,
    CapacityError,
    Instance,
    MachineSpec,
    Placement,
)
from cml_action.errors import CloudError, UserError
from cml_action.options import parse_pairs
from cml_action.runners.startup import GITHUB_RUNNER_VERSION, GITLAB_RUNNER_VERSION

T = TypeVar("T")

# requests (cpu, memory): sized to fit the allocatable share of the usual GPU node of each size
SIZES = {"s": "cpu=1,memory=4Gi", "m": "cpu=4,memory=16Gi", "l": "cpu=8,memory=32Gi", "xl": "cpu=16,memory=64Gi"}
# generic GPU -> the values the clusters' own node labels give it: NVIDIA GPU feature discovery
# (nvidia.com/gpu.product), GKE (cloud.google.com/gke-accelerator), Karpenter on EKS (karpenter.k8s.aws/instance-gpu-name)
GPU_LABELS = ("nvidia.com/gpu.product", "cloud.google.com/gke-accelerator", "karpenter.k8s.aws/instance-gpu-name")
GPUS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "t4": (["Tesla-T4"], ["nvidia-tesla-t4"], ["t4"]),
    "l4": (["NVIDIA-L4"], ["nvidia-l4"], ["l4"]),
    "a10g": (["NVIDIA-A10G"], [], ["a10g"]),
    "v100": (["Tesla-V100-SXM2-16GB", "Tesla-V100-SXM2-32GB", "Tesla-V100-PCIE-16GB", "Tesla-V100-PCIE-32GB"],
             ["nvidia-tesla-v100"], ["v100"]),
    "a100": (["NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-80GB-PCIe"],
             ["nvidia-tesla-a100", "nvidia-a100-80gb"], ["a100"]),
    "h100": (["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"], ["nvidia-h100-80gb", "nvidia-h100-mega-80gb"],
             ["h100"]),
}
GPU_RESOURCE = "nvidia.com/gpu"
GITHUB_IMAGE = f"ghcr.io/actions/actions-runner:{GITHUB_RUNNER_VERSION}"
GITLAB_RUNNER_IMAGE = f"gitlab/gitlab-runner:v{GITLAB_RUNNER_VERSION}"
CML_IMAGE = "ghcr.io/cml-action/cml-action:v1"
TAGS_ANNOTATION = "cml-action/tags"
SECRET_KEY = "registration"
GITHUB_HOME = "/home/runner"  # where the vendor's image has the runner
RUNNER_DIR = "/cml/runner"
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
HANDOVER_DIR = "/run/cml-handover"
SECRET_DIR = "/run/cml-secret"
TERMINATION_LOG = "/dev/termination-log"
WAITING_FOR_GOOD = ("InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError")

ROLE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cml-action-launcher
  namespace: ci-runners
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [create, get, list, delete]
  - apiGroups: [""]
    resources: [secrets]
    verbs: [create, delete]
"""


def label_value(text: str) -> str:
    """A label value (63 characters of [A-Za-z0-9._-], alphanumeric at both ends) that stands for `text`:
    the same text always gives the same value, so it can select; a long one keeps a hash of the whole."""
    value = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    if len(value) > 63:
        value = value[:50] + "_" + sha256(text.encode()).hexdigest()[:12]
    return value.strip("._-") or "none"


def parse_toleration(text: str) -> dict[str, str]:
    """kubectl's taint syntax: `key=value:Effect`, `key:Effect` (any value) or `key` (any value, any effect)."""
    head, _, effect = text.partition(":")
    key, sep, value = head.partition("=")
    if not key or (effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute")):
        raise UserError(f"--kubernetes-tolerations: expected key[=value][:NoSchedule|PreferNoSchedule|NoExecute], "
                        f"got {text!r}")
    toleration = {"key": key, "operator": "Equal" if sep else "Exists"}
    if sep:
        toleration["value"] = value
    if effect:
        toleration["effect"] = effect
    return toleration


def parse_size(text: str) -> dict[str, str]:
    """`cpu=4,memory=16Gi` -> requests; memory is also the limit, CPU is not capped (no throttling)."""
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in ("cpu", "memory", "ephemeral-storage") or not re.fullmatch(r"[0-9.]+(m|[KMGT]i?)?", value):
            raise UserError(f"--cloud-type {text!r}: on Kubernetes use s, m, l, xl or cpu=N,memory=Q (e.g. cpu=4,memory=16Gi)")
        out[key] = value
    if not out:
        raise UserError("--cloud-type: empty")
    return out


class KubernetesProvider:
    cloud = "kubernetes"
    machine_noun = "pod"

    def __init__(self, env: Mapping[str, str], context: str, settings: Mapping[str, Any]) -> None:
        self._env = env
        self.context = context
        self._api: Any = None
        self._namespace = str(settings.get("kubernetes_namespace") or "")
        self.node_selector = parse_pairs("kubernetes-node-selector", settings.get("kubernetes_node_selector") or [])
        self.tolerations = [parse_toleration(t) for t in settings.get("kubernetes_tolerations") or []]
        self.pull_secrets = list(settings.get("kubernetes_image_pull_secrets") or [])

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        """A CoreV1Api of our own ApiClient (no global configuration): KUBECONFIG (else ~/.kube/config) and its
        context; inside a cluster without KUBECONFIG, the pod's service account."""
        if self._api is None:
            from kubernetes import client
            from kubernetes.config.config_exception import ConfigException

            try:
                if self._env.get("KUBECONFIG") or not self._env.get("KUBERNETES_SERVICE_HOST"):
                    api_client = self._from_kubeconfig()
                else:
                    api_client = self._in_cluster()
            except (ConfigException, OSError, TypeError, ValueError) as exc:
                raise UserError(f"no Kubernetes credentials: set KUBECONFIG or run inside the cluster ({exc})") from None
            self._namespace = self._namespace or "default"
            self._api = client.CoreV1Api(api_client)
        return self._api

    def _from_kubeconfig(self) -> Any:
        import os

        from kubernetes import config

        path = self._env.get("KUBECONFIG") or os.path.join(self._env.get("HOME", "~"), ".kube", "config")
        path = os.path.expanduser(path)
        api_client = config.new_client_from_config(config_file=path, context=self.context or None, persist_config=False)
        if not self._namespace:
            contexts, active = config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c["name"] == self.context), active) if self.context else active
            self._namespace = (chosen or {}).get("context", {}).get("namespace", "")
        return api_client

    def _in_cluster(self) -> Any:
        """The pod's own service account: its token (re-read when kubelet rotates it), CA and namespace."""
        from kubernetes import client
        from kubernetes.config.incluster_config import InClusterConfigLoader

        folder = self._env.get("CML_KUBE_SERVICEACCOUNT_DIR", SERVICEACCOUNT_DIR)
        configuration = client.Configuration()
        InClusterConfigLoader(token_filename=f"{folder}/token", cert_filename=f"{folder}/ca.crt",
                              environ=dict(self._env)).load_and_set(configuration)
        self._namespace = self._namespace or _read(f"{folder}/namespace")
        return client.ApiClient(configuration)

    @property
    def namespace(self) -> str:
        if not self._namespace:
            self.api  # noqa: B018 - the namespace may come from the kubeconfig context or the service account
        return self._namespace

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as exc:
            if exc.status == 404:
                raise
            message = _message(exc)
            if exc.status == 403 and "exceeded quota" in message:
                raise CapacityError(f"ResourceQuota: {message}", "cloud", code="ExceededQuota") from None
            if exc.status in (401, 403):
                raise CloudError(f"Kubernetes refused to {what} ({exc.status}): {message}; the launcher needs the Role "
                                 "in the README (pods: create, get, list, delete; secrets: create, delete)") from None
            raise CloudError(f"Kubernetes failed to {what}: {exc.status} {message}") from None
        except HTTPError as exc:
            raise CloudError(f"cannot reach the Kubernetes API to {what}: {exc}") from None

    # --- catalogue --------------------------------------------------------------------------------
    def zones(self, region: str) -> list[str]:
        """One placement: the namespace. Where in the cluster the pod runs is the scheduler's choice."""
        return [self.namespace]

    def native_type(self, generic: str, gpu: str, gpu_count: int) -> str:
        gpu = _gpu(gpu)
        size = SIZES.get(generic.lower(), generic)
        parse_size(size)
        if gpu not in ("", "none", "any") and gpu not in GPUS and not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", gpu):
            raise UserError(f"--cloud-gpu {gpu!r}: on Kubernetes use none, any, {', '.join(GPUS)} or a "
                            "nvidia.com/gpu.product value")
        return size

    def secret_snippet(self, spec: MachineSpec) -> str:
        return ""  # not a VM: the pod's own command (kubernetes_pod.sh) reads the handed-over file

    def poweroff_snippet(self, spec: MachineSpec) -> str:
        return "exit 0"  # not a VM: the pod ends when its command ends (restartPolicy Never)

    # --- the pod ----------------------------------------------------------------------------------
    def _labels(self, tags: Mapping[str, str]) -> dict[str, str]:
        labels = {k: label_value(v) for k, v in tags.items()
                  if re.fullmatch(r"([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", k)}
        return labels

    def _affinity(self, spec: MachineSpec) -> dict | None:
        if spec.gpu in ("", "none", "any"):
            return None
        values = GPUS.get(spec.gpu, ([spec.gpu], [], []))
        terms = [{"matchExpressions": [{"key": key, "operator": "In", "values": vals}]}
                 for key, vals in zip(GPU_LABELS, values) if vals]
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}

    def _containers(self, spec: MachineSpec, size: dict[str, str]) -> tuple[list[dict], list[dict]]:
        """The runner container runs the job's image (ours by default, the GPU variant with a GPU; or
        `cloud-image`), into which an init container copies the forge's runner from the vendor's image; the
        job's steps run there, with the GPUs. Another init container hands the registration over."""
        gpu = spec.gpu not in ("", "none")
        image = spec.image or CML_IMAGE + ("-gpu" if gpu else "")
        small = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "256Mi"}}
        env = {"CML_FORGE": spec.forge, "CML_RUNNER_NAME": spec.name, "CML_IDLE_TIMEOUT": str(spec.idle_timeout_s),
               "CML_HANDOVER": f"{HANDOVER_DIR}/{SECRET_KEY}", "CML_TERMINATION_LOG": TERMINATION_LOG}
        mounts = [{"name": "handover", "mountPath": HANDOVER_DIR}, {"name": "runner", "mountPath": RUNNER_DIR}]
        if spec.forge == "github":
            env.update(CML_RUNNER_HOME=RUNNER_DIR, CML_WORK=f"{RUNNER_DIR}/_work", RUNNER_ALLOW_RUNASROOT="1",
                       DOTNET_SYSTEM_GLOBALIZATION_INVARIANT="1")  # the runner needs no ICU in the job's image
            vendor = {"name": "github-runner", "image": GITHUB_IMAGE,
                      "command": ["cp", "-R", f"{GITHUB_HOME}/.", f"{RUNNER_DIR}/"], "resources": small,
                      "volumeMounts": [{"name": "runner", "mountPath": RUNNER_DIR}]}
        else:
            env.update(CML_WORK=f"{RUNNER_DIR}/builds", CML_FORGE_URL=spec.forge_url,
                       CML_GITLAB_RUNNER=f"{RUNNER_DIR}/gitlab-runner")
            vendor = {"name": "gitlab-runner", "image": GITLAB_RUNNER_IMAGE,
                      "command": ["cp", "/usr/bin/gitlab-runner", f"{RUNNER_DIR}/gitlab-runner"], "resources": small,
                      "volumeMounts": [{"name": "runner", "mountPath": RUNNER_DIR}]}
        limits = {"memory": size["memory"]} if "memory" in size else {}
        if gpu:
            limits[GPU_RESOURCE] = str(spec.gpu_count)
        script = resources.files("cml_action.clouds").joinpath("kubernetes_pod.sh").read_text(encoding="utf-8")
        runner = {"name": "runner", "image": image, "command": ["/bin/bash", "-c", script, "cml-runner"],
                  "env": [{"name": k, "value": v} for k, v in env.items()],
                  "resources": {"requests": size, "limits": limits}, "volumeMounts": mounts,
                  "terminationMessagePath": TERMINATION_LOG, "terminationMessagePolicy": "FallbackToLogsOnError"}
        copy = 'cp "$CML_SECRET_FILE" "$CML_HANDOVER" && chmod 0600 "$CML_HANDOVER"'
        handover = {"name": "handover", "image": image, "command": ["/bin/sh", "-c", copy],
                    "env": [{"name": "CML_SECRET_FILE", "value": f"{SECRET_DIR}/{SECRET_KEY}"},
                            {"name": "CML_HANDOVER", "value": f"{HANDOVER_DIR}/{SECRET_KEY}"}],
                    "resources": small,
                    "volumeMounts": [{"name": "registration", "mountPath": SECRET_DIR, "readOnly": True},
                                     {"name": "handover", "mountPath": HANDOVER_DIR}]}
        return [vendor, handover], [runner]

    def pod_manifest(self, spec: MachineSpec, placement: Placement) -> dict:
        if placement.spot:
            raise UserError("--cloud-spot: on Kubernetes choose spot nodes with kubernetes-node-selector and "
                            "kubernetes-tolerations (e.g. cloud.google.com/gke-spot=true)")
        if spec.subnet:
            raise UserError("--cloud-subnet has no meaning on Kubernetes (the pod network is the cluster's)")
        size = parse_size(placement.machine_type)
        spec = replace(spec, gpu=_gpu(spec.gpu))
        init, containers = self._containers(spec, size)
        selector = dict(self.node_selector)
        if placement.zone and placement.zone != self.namespace:
            selector["topology.kubernetes.io/zone"] = placement.zone
        tolerations = list(self.tolerations)
        if spec.gpu not in ("", "none"):  # GPU node pools are commonly tainted so that only GPU pods land there
            tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        volumes = [
            {"name": "registration", "secret": {"secretName": _secret_name(spec.name), "defaultMode": 0o444}},
            {"name": "handover", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "runner", "emptyDir": {"sizeLimit": f"{spec.disk_gb}Gi"}},  # the runner and the jobs' work
        ]
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never", "activeDeadlineSeconds": spec.max_lifetime_s, "terminationGracePeriodSeconds": 30,
            "enableServiceLinks": False, "automountServiceAccountToken": bool(spec.permission_set),
            "initContainers": init, "containers": containers, "volumes": volumes,
        }
        optional = {"serviceAccountName": spec.permission_set, "nodeSelector": selector, "tolerations": tolerations,
                    "affinity": self._affinity(spec), "imagePullSecrets": [{"name": n} for n in self.pull_secrets]}
        pod_spec.update({k: v for k, v in optional.items() if v})
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": spec.name, "namespace": self.namespace, "labels": self._labels(spec.tags),
                             "annotations": {TAGS_ANNOTATION: json.dumps(spec.tags, sort_keys=True)}},
                "spec": pod_spec}

    def create(self, spec: MachineSpec, placement: Placement) -> Instance:
        from kubernetes.client.exceptions import ApiException

        manifest = self.pod_manifest(spec, placement)
        ns = self.namespace
        try:
            pod = self._call("create the runner pod", lambda: self.api.create_namespaced_pod(ns, manifest, _request_timeout=30))
        except ApiException as exc:
            raise CloudError(f"Kubernetes failed to create the runner pod: {exc.status} {_message(exc)}") from None
        try:
            secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": True,
                      "metadata": {"name": _secret_name(spec.name), "namespace": ns, "labels": self._labels(spec.tags),
                                   # no blockOwnerDeletion: it would need pods/finalizers rights where the
                                   # OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift)
                                   "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": spec.name,
                                                        "uid": pod.metadata.uid}]},
                      "data": {SECRET_KEY: base64.b64encode(spec.secret.encode()).decode()}}
            self._call("store the registration Secret", lambda: self.api.create_namespaced_secret(ns, secret, _request_timeout=30))
        except BaseException:
            try:
                self._delete(ns, spec.name)
            except CloudError:
                pass  # never hide why the launch failed; the launch's own cleanup tries again and reports
            raise
        return self._instance(pod)

    # --- reading back ---------------------------------------------------------------------------------
    def _instance(self, pod: Any) -> Instance:
        meta, status = pod.metadata, pod.status
        tags = json.loads((meta.annotations or {}).get(TAGS_ANNOTATION, "{}"))
        created = meta.creation_timestamp if isinstance(meta.creation_timestamp, datetime) else None
        zone = (pod.spec.node_name if pod.spec else None) or meta.namespace
        return Instance(f"{meta.namespace}/{meta.name}", tags.get(TAG_RUNNER, meta.name), zone, _state(pod), tags,
                        created, _preempted(status))

    def find(self, tags: dict[str, str]) -> list[Instance]:
        selector = ",".join(f"{k}={label_value(v)}" for k, v in tags.items())
        pods = self._call("list runner pods", lambda: self.api.list_namespaced_pod(
            self.namespace, label_selector=selector, _request_timeout=30))
        found = [self._instance(p) for p in pods.items]
        return [i for i in found if all(i.tags.get(k) == v for k, v in tags.items())]

    def state(self, instance: Instance) -> Instance:
        from kubernetes.client.exceptions import ApiException

        ns, name = instance.id.split("/", 1)
        try:
            return self._instance(self._call("read the runner pod", lambda: self.api.read_namespaced_pod(
                name, ns, _request_timeout=30)))
        except ApiException:
            return Instance(instance.id, instance.name, instance.zone, "missing", instance.tags, instance.created_at)

    def explain(self, instance: Instance) -> str:
        """Why the pod has no runner online, in the cluster's words: the scheduler's message, the container's
        waiting reason, or how it ended and its termination message."""
        from kubernetes.client.exceptions import ApiException

        ns, name = instance.id.split("/", 1)
        try:
            pod = self._call("read the runner pod", lambda: self.api.read_namespaced_pod(name, ns, _request_timeout=30))
        except (ApiException, CloudError):
            return ""
        return describe(pod)

    def delete(self, instance: Instance) -> None:
        ns, name = instance.id.split("/", 1)
        self._delete(ns, name)

    def _delete(self, ns: str, name: str) -> None:
        from kubernetes.client import V1DeleteOptions
        from kubernetes.client.exceptions import ApiException

        options = V1DeleteOptions(propagation_policy="Background", grace_period_seconds=5)
        for what, call in (("delete the runner pod", lambda: self.api.delete_namespaced_pod(
                               name, ns, body=options, _request_timeout=30)),
                           ("delete the registration Secret", lambda: self.api.delete_namespaced_secret(
                               _secret_name(name), ns, body=options, _request_timeout=30))):
            try:
                self._call(what, call)
            except ApiException:
                pass  # 404: already gone (the garbage collector may have been first)


def _state(pod: Any) -> str:
    """Provider-neutral state. A finished pod is `stopped`, not `terminated`: it still exists (with its Secret)
    until teardown or sweep deletes it, though its GPUs are already free."""
    status = pod.status
    if pod.metadata.deletion_timestamp:
        return "stopping"
    phase = status.phase if status else "Pending"
    state = {"Pending": "pending", "Running": "running", "Succeeded": "stopped", "Failed": "stopped"}.get(phase, "pending")
    if state == "pending" and any(_waiting_reason(c) in WAITING_FOR_GOOD for c in (status.container_statuses or [])):
        return "stopped"  # a pod that can never start (bad image name, broken config) is as good as ended
    return state


def _preempted(status: Any) -> bool:
    """Evicted, or disrupted by the cluster (preemption, node shutdown or drain): `retry-on-preemption` applies."""
    if status is None:
        return False
    if status.reason in ("Evicted", "Preempting"):
        return True
    return any(c.type == "DisruptionTarget" and c.status == "True" for c in status.conditions or [])


def describe(pod: Any) -> str:
    status = pod.status
    if status is None:
        return ""
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"the scheduler cannot place the pod ({condition.reason}): {condition.message}"
    if status.reason:
        return f"the pod {status.phase.lower()}: {status.reason} {status.message or ''}".strip()
    for container in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        problem = _container_problem(container)
        if problem:
            return problem
    return f"the pod is {status.phase}"


def _container_problem(container: Any) -> str:
    terminated = container.state.terminated if container.state else None
    if terminated is not None and (terminated.exit_code or container.name == "runner"):
        text = f"container {container.name} exited with code {terminated.exit_code}"
        return text + (f": {terminated.message.strip()}" if terminated.message else "")
    if _waiting_reason(container) not in ("", "ContainerCreating", "PodInitializing"):
        waiting = container.state.waiting
        return f"container {container.name} is waiting: {waiting.reason} {waiting.message or ''}".strip()
    return ""


def _gpu(text: str) -> str:
    """`T4` is `t4`; anything else is a node label value (e.g. NVIDIA-H200) and keeps its case."""
    lowered = text.strip().lower()
    return lowered if lowered in (*GPUS, "", "none", "any") else text.strip()


def _waiting_reason(status: Any) -> str:
    waiting = status.state.waiting if status.state else None
    return (waiting.reason or "") if waiting else ""


def _secret_name(name: str) -> str:
    return f"{name}-registration"


def _message(exc: Any) -> str:
    try:
        return json.loads(exc.body).get("message", "") or exc.reason
    except (TypeError, ValueError):
        return str(exc.reason or "")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def from_env(env: Mapping[str, str], region: str, settings: Mapping[str, Any] | None = None) -> KubernetesProvider:
    return KubernetesProvider(env, region, settings or {})
