"""The `kubernetes_cloud` fixture: the Kubernetes stand-in, reached by the official `kubernetes` client through a
real kubeconfig file (KUBECONFIG), with stub runner images the stand-in's kubelet can run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from standins.kubernetes.kubelet import Image
from standins.kubernetes.scheduler import Node
from standins.kubernetes.server import TOKEN, KubernetesStandIn

NAMESPACE = "ci-runners"
GITHUB_IMAGE = "ghcr.io/actions/actions-runner:2.337.0"
GITLAB_RUNNER_IMAGE = "gitlab/gitlab-runner:v18.5.0"
CML_IMAGES = ("ghcr.io/cml-action/cml-action:v1", "ghcr.io/cml-action/cml-action:v1-gpu")
GPU_NODE = Node("gpu-node-1", labels={"nvidia.com/gpu.product": "Tesla-T4", "nvidia.com/gpu.count": "1"},
                taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                allocatable={"cpu": "8", "memory": "30Gi", "nvidia.com/gpu": "1"})

# What a stub runner does once started: `job` (one job, then exit), `idle` (never gets a job), `long` (a job that
# outlasts everything). It records its arguments and environment, to prove the secret came on the side.
RUNNERS = {"job": "{start}; sleep 0.5; exit 0", "idle": "sleep 60", "long": "{start}; sleep 60"}
STARTS = {  # how each real runner shows that a job started (what the pod's watchdog looks for)
    "github": "mkdir -p _diag && touch _diag/Worker_1.log",
    "gitlab": 'for a in "$@"; do [ "$prev" = --builds-dir ] && builds=$a; prev=$a; done; mkdir -p "$builds/project-0"',
}


def _stub(path: Path, forge: str, mode: str) -> None:
    path.write_text("#!/bin/bash\n"
                    'printf "%s\\n" "$@" > "$HOME/runner-args"\n'
                    'env > "$HOME/runner-env"\n'
                    + RUNNERS[mode].replace("{start}", STARTS[forge]) + "\n")
    path.chmod(0o755)


class KubernetesCloud:
    cloud = "kubernetes"
    region = ""  # the kubeconfig's current context

    def __init__(self, tmp: Path, rules: list[dict] | None = None) -> None:
        self.tmp = tmp
        self.standin = KubernetesStandIn(rules).start()
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "standin",
                  "clusters": [{"name": "standin", "cluster": {"server": self.standin.url}}],
                  "users": [{"name": "launcher", "user": {"token": TOKEN}}],
                  "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "launcher",
                                                               "namespace": NAMESPACE}}]}
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        self.env = {"KUBECONFIG": str(kubeconfig)}
        self._stop = threading.Event()
        self.runner_mode("idle")

    def runner_mode(self, mode: str) -> None:
        """What the stub runners in the images do: `job` (one job, then exit), `idle` (never gets one), `long`."""
        images = self.tmp / f"images-{mode}"
        home = images / "home-runner"
        home.mkdir(parents=True, exist_ok=True)
        _stub(home / "run.sh", "github", mode)
        gitlab = images / "gitlab-runner"
        _stub(gitlab, "gitlab", mode)
        self.standin.images[GITHUB_IMAGE] = Image({"/home/runner": home})
        self.standin.images[GITLAB_RUNNER_IMAGE] = Image({"/usr/bin/gitlab-runner": gitlab})
        for name in CML_IMAGES:
            self.standin.images[name] = Image({})

    def when_runner_starts(self, callback: Callable[[str, list[str]], None]) -> None:
        """Call `callback(pod name, runner arguments)` once the stub runner of a pod has started, as the forge
        would see a real runner connect: the link between the cluster and the forge's stand-in."""
        seen: set[str] = set()

        def watch() -> None:
            while not self._stop.is_set():
                for pod in self.standin.objects("pods"):
                    name = pod["metadata"]["name"]
                    args = self.standin.sandbox(pod) / "runner-args"
                    if name not in seen and args.exists():
                        seen.add(name)
                        callback(name, args.read_text().splitlines())
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()

    def runner_files(self, name: str) -> dict[str, str]:
        """What the stub runner of pod `name` recorded: its arguments (`runner-args`), environment (`runner-env`)."""
        folder = self.standin._sandbox / NAMESPACE / name
        return {f.name: f.read_text() for f in folder.glob("runner-*")}

    def add_gpu_node(self, node: Node = GPU_NODE) -> None:
        self.standin.add_node(node)

    def instances(self) -> list[dict]:
        return [{"id": f"{p['metadata']['namespace']}/{p['metadata']['name']}", "name": p["metadata"]["name"],
                 "tags": p["metadata"].get("labels", {}), "raw": p} for p in self.standin.objects("pods")]

    def secrets(self) -> dict[str, str]:
        import base64

        return {s["metadata"]["name"]: base64.b64decode(s["data"]["registration"]).decode()
                for s in self.standin.objects("secrets")}

    def leftovers(self) -> list[str]:
        return [f"pod {p['metadata']['name']}" for p in self.standin.objects("pods")] + \
               [f"secret {s['metadata']['name']}" for s in self.standin.objects("secrets")]

    def set_state(self, instance_id: str, state: str, preempted: bool = False) -> None:
        """What the cluster does to a pod on its own: preempt it for a higher-priority pod, or end it."""
        ns, name = instance_id.split("/", 1)
        with self.standin.lock:
            pod = self.standin.pods[(ns, name)]
            pod["status"]["phase"] = "Failed" if preempted or state != "running" else "Running"
            if preempted:
                pod["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                                "reason": "PreemptionByScheduler", "lastTransitionTime": "2026-01-01T00:00:00Z"}]

    def assert_clean(self) -> None:
        self.standin.assert_clean()


@pytest.fixture()
def kubernetes_cloud(tmp_path: Path) -> Iterator[KubernetesCloud]:
    cloud = KubernetesCloud(tmp_path)
    try:
        yield cloud
        cloud.assert_clean()
    finally:
        cloud._stop.set()
        cloud.standin.stop()
