"""GitLab runners of one project: a runner authentication token per launch (POST /user/runners), not the
deprecated registration tokens. The VM runs `gitlab-runner run-single` for one job with that token.

Creating a runner needs a token with the `create_runner` scope (or `api`) from a Maintainer of the project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cml_action.ci.context import CIContext
from cml_action.errors import ForgeError, PermissionDenied, UserError
from cml_action.forges.gitlab import server_from_api
from cml_action.runners.registry import Registration, RunnerInfo

T = TypeVar("T")
NEEDED = ("a token with the create_runner and manage_runner scopes (or api) from a project Maintainer, "
          "in CML_TOKEN")


class GitLabRunnerRegistry:
    def __init__(self, ctx: CIContext, token: str) -> None:
        import gitlab

        if not ctx.api_url or not ctx.project_id:
            raise UserError("CI_API_V4_URL and CI_PROJECT_ID are not set: cannot manage GitLab runners")
        self._gl = gitlab.Gitlab(server_from_api(ctx.api_url), private_token=token, retry_transient_errors=False,
                                 timeout=30)
        self._project_id = int(ctx.project_id) if ctx.project_id.isdigit() else ctx.project_id
        self._project = self._gl.projects.get(self._project_id, lazy=True)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from gitlab.exceptions import GitlabError

        try:
            return fn()
        except GitlabError as exc:
            code = getattr(exc, "response_code", 0) or 0
            if code in (401, 403):
                raise PermissionDenied(f"the token may not {what}: use {NEEDED}", "create_runner") from None
            raise ForgeError(f"GitLab failed to {what}: {code} {exc.error_message}".strip()) from None

    def register(self, name: str, labels: list[str]) -> Registration:
        data: Any = self._call("create a runner", lambda: self._gl.http_post("/user/runners", post_data={
            "runner_type": "project_type", "project_id": self._project_id, "description": name,
            "tag_list": labels, "run_untagged": False, "locked": True, "maximum_timeout": 86400}))
        return Registration(str(data["id"]), name, data["token"], "gitlab-token")

    def list(self, label: str | None = None) -> list[RunnerInfo]:
        kwargs = {"tag_list": label} if label else {}
        runners = self._call("list runners", lambda: list(self._project.runners.list(iterator=True, **kwargs)))
        return [self._info(r.attributes) for r in runners]

    def get(self, runner_id: str) -> RunnerInfo | None:
        from gitlab.exceptions import GitlabGetError

        try:
            runner = self._gl.runners.get(int(runner_id))
        except GitlabGetError as exc:
            if exc.response_code == 404:
                return None
            if exc.response_code in (401, 403):
                raise PermissionDenied(f"the token may not read runner {runner_id}: use {NEEDED}", "create_runner") from None
            raise ForgeError(f"GitLab failed to read runner {runner_id}: {exc.response_code}") from None
        return self._info(runner.attributes)

    def delete(self, runner_id: str) -> None:
        from gitlab.exceptions import GitlabDeleteError

        try:
            self._gl.runners.delete(int(runner_id))
        except GitlabDeleteError as exc:
            if exc.response_code == 404:
                return
            if exc.response_code in (401, 403):
                raise PermissionDenied(f"the token may not delete runner {runner_id}: use {NEEDED}", "manage_runner") from None
            raise ForgeError(f"GitLab refused to delete runner {runner_id}: {exc.response_code} {exc.error_message}") from None

    def rerun_failed_jobs(self, run_id: str) -> None:
        pipeline = self._project.pipelines.get(int(run_id), lazy=True)
        self._call(f"retry pipeline {run_id}", pipeline.retry)

    @staticmethod
    def _info(data: dict) -> RunnerInfo:
        online = data.get("status") == "online" if "status" in data else bool(data.get("online"))
        return RunnerInfo(str(data["id"]), data.get("description") or "", tuple(data.get("tag_list") or ()), online)
