"""The GitLab example for Kubernetes runners, its jobs run through the template's script against the GitLab and
Kubernetes stand-ins: launch (a pod whose stub runner comes online), train, teardown; nothing left."""

from __future__ import annotations

import re
from pathlib import Path

from repo_helpers import example_repo, git
from test_gitlab_examples import EXAMPLES, TEMPLATE, documents, gitlab_env, gl, job_env, run_job  # noqa: F401


def expand(variables: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """What GitLab does with `$NAME` in a job's variables."""
    return {k: re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), v) for k, v in variables.items()}


def test_gitlab_kubernetes_example_launches_trains_and_tears_down(gl, kubernetes_cloud, tmp_path: Path):  # noqa: F811
    kubernetes_cloud.add_gpu_node()

    def online(name: str, args: list[str]) -> None:
        for runner in gl.runners.values():
            if runner.description == name:
                runner.status = "online"
    kubernetes_cloud.when_runner_starts(online)
    (template,) = [d[".cml-action"] for d in documents(TEMPLATE)]
    jobs = documents(EXAMPLES / "gpu-kubernetes.gitlab-ci.yml")[0]
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(42, 13, head)
    base = {**gitlab_env(gl, head, 13), **kubernetes_cloud.env, "CI_PIPELINE_IID": "7"}
    launch = run_job(repo, template["script"], {**base, **expand(job_env(jobs["launch"], template), base)})
    assert launch.returncode == 0, launch.stderr + launch.stdout
    dotenv = dict(line.split("=", 1) for line in (repo / "cml.env").read_text().splitlines())
    (runner,) = gl.runners.values()
    tag = expand({"t": jobs["train"]["tags"][0]}, base)["t"]
    assert tag == "cml-k8s-7" and tag in runner.tags and dotenv["CML_RUNNER_LABEL"] in runner.tags
    (pod,) = kubernetes_cloud.standin.objects("pods")
    assert pod["metadata"]["namespace"] == "ci-runners"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    train = run_job(repo, template["script"], {**base, **job_env(jobs["train"], template)})
    assert train.returncode == 0, train.stderr
    teardown = run_job(repo, template["script"], {**base, **dotenv, **job_env(jobs["teardown"], template)})
    assert teardown.returncode == 0, teardown.stderr
    assert kubernetes_cloud.leftovers() == [] and gl.runners == {}
