"""GitHub Actions runners of one repository: just-in-time registration, status, removal, re-runs.

A JIT config registers a runner for exactly one job; the VM receives nothing else from GitHub. Minting it
needs admin rights on the repository (`administration: write` for a GitHub App token, a fine-grained PAT with
"Administration" read and write, or a classic PAT with `repo`): the workflow's own GITHUB_TOKEN cannot.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from cml_action.errors import ForgeError, PermissionDenied
from cml_action.runners.registry import Registration, RunnerInfo

T = TypeVar("T")
ADMIN = ("administration: write (a fine-grained PAT or GitHub App token with Administration read/write; "
         "the workflow's GITHUB_TOKEN cannot manage runners)")
ACTIONS = "actions: write"
ATTEMPTS = 4
RERUN_EVENT = "cml-action-rerun"


class GitHubRunnerRegistry:
    def __init__(self, api_url: str, repository: str, token: str, backoff: float = 1.0) -> None:
        from github import Auth, Github

        from cml_action.forges.github import _make_retry

        self._gh = Github(base_url=api_url, auth=Auth.Token(token), retry=_make_retry(), timeout=30, lazy=True,
                          seconds_between_requests=None, seconds_between_writes=None)
        self._base = f"/repos/{repository}/actions"
        self._backoff = backoff

    def _request(self, verb: str, path: str, permission: str, what: str, **kwargs: Any) -> Any:
        """403/401 name what to fix; when the retries give up (5xx, no connection) one ForgeError line says so."""
        import requests
        from github import GithubException

        try:
            url = path if path.startswith("/repos/") else self._base + path
            _, data = self._gh.requester.requestJsonAndCheck(verb, url, **kwargs)
            return data
        except GithubException as exc:
            if exc.status == 403:
                raise PermissionDenied(f"the token may not {what}: it needs `{permission}`", permission) from None
            if exc.status == 401:
                raise ForgeError(f"GitHub rejected the token while trying to {what} (401 Bad credentials)") from None
            raise
        except requests.exceptions.RetryError as exc:
            reason = getattr(getattr(exc.args[0] if exc.args else None, "reason", None), "args", [""])
            raise ForgeError(f"GitHub kept failing while trying to {what}: {reason[0] if reason else exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ForgeError(f"could not reach GitHub to {what}: {type(exc).__name__}") from None

    def _checked(self, verb: str, path: str, permission: str, what: str, **kwargs: Any) -> Any:
        """`_request` for callers with no status to special-case: any other refusal is one ForgeError line too."""
        from github import GithubException

        try:
            return self._request(verb, path, permission, what, **kwargs)
        except GithubException as exc:
            message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
            raise ForgeError(f"GitHub refused to {what}: {exc.status} {message}".strip()) from None

    def register(self, name: str, labels: list[str]) -> Registration:
        from github import GithubException

        body = {"name": name, "runner_group_id": 1, "labels": labels, "work_folder": "_work"}
        for attempt in range(ATTEMPTS):
            try:
                data = self._request("POST", "/runners/generate-jitconfig", ADMIN, "register a runner", input=body)
                runner = data["runner"]
                return Registration(str(runner["id"]), runner["name"], data["encoded_jit_config"], "github-jit")
            except GithubException as exc:
                if exc.status < 500 or attempt == ATTEMPTS - 1:
                    raise ForgeError(f"GitHub refused to register runner {name}: {exc.status} "
                                     f"{(exc.data or {}).get('message', '') if isinstance(exc.data, dict) else ''}".strip()) from None
            # the runner may exist with its config lost in the failed response: remove it, then ask again
            for info in self.list():
                if info.name == name:
                    self.delete(info.runner_id)
            time.sleep(self._backoff * 2**attempt)
        raise ForgeError(f"could not register runner {name}")  # pragma: no cover

    def list(self, label: str | None = None) -> list[RunnerInfo]:
        found: list[RunnerInfo] = []
        page = 1
        while True:
            data = self._checked("GET", "/runners", ADMIN, "list runners", parameters={"per_page": 100, "page": page})
            for runner in data.get("runners", []):
                info = _info(runner)
                if label is None or label in info.labels:
                    found.append(info)
            if page * 100 >= int(data.get("total_count", 0)):
                return found
            page += 1

    def get(self, runner_id: str) -> RunnerInfo | None:
        from github import GithubException

        try:
            return _info(self._request("GET", f"/runners/{runner_id}", ADMIN, "read a runner"))
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise ForgeError(f"GitHub failed to read runner {runner_id}: {exc.status}") from None

    def delete(self, runner_id: str) -> None:
        from github import GithubException

        try:
            self._request("DELETE", f"/runners/{runner_id}", ADMIN, f"remove runner {runner_id}")
        except GithubException as exc:
            if exc.status == 404:
                return  # already gone: the ephemeral runner removed itself after its job
            message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
            raise ForgeError(f"GitHub refused to remove runner {runner_id}: {exc.status} {message}".strip()) from None

    def rerun_failed_jobs(self, run_id: str) -> None:
        from github import GithubException

        try:
            self._request("POST", f"/runs/{run_id}/rerun-failed-jobs", ACTIONS, "re-run failed jobs")
        except GithubException as exc:
            message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
            raise ForgeError(f"GitHub refused to re-run the failed jobs of run {run_id}: {exc.status} {message}".strip()) from None

    def run_completed(self, run_id: str) -> bool:
        data = self._checked("GET", f"/runs/{run_id}", ACTIONS, "read the workflow run")
        return data.get("status") == "completed"

    def request_rerun_later(self, run_id: str) -> None:
        """A run re-runs its failed jobs only once it has completed, which the teardown job of that same run never
        sees: hand the request to the `rerun-preempted` workflow (`on: repository_dispatch`), which waits for it."""
        body = {"event_type": RERUN_EVENT, "client_payload": {"run_id": str(run_id)}}
        self._checked("POST", self._base.removesuffix("/actions") + "/dispatches", "contents: write",
                      "ask the rerun-preempted workflow to re-run the job", input=body)

    def wait_and_rerun(self, run_id: str, timeout_s: int, poll_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.run_completed(run_id):
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        self.rerun_failed_jobs(run_id)
        return True


def _info(runner: dict) -> RunnerInfo:
    return RunnerInfo(str(runner["id"]), runner["name"], tuple(label["name"] for label in runner.get("labels", [])),
                      runner.get("status") == "online", bool(runner.get("busy")))
