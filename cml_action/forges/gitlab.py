"""GitLab (gitlab.com and self-managed) through python-gitlab, behind the same Forge interface as GitHub.

Differences the publisher never sees: images go to the project's uploads (one request each, linked with
the markdown GitLab returns); merge request notes are the sticky comment (notes come newest first, 20 a
page, so every page is searched); commit comments cannot be edited, so a new one is posted and we say so.
CI_JOB_TOKEN cannot write notes: a 401/403 names the token to create instead.

Never twice: python-gitlab's own retry of transient errors would replay POSTs, so it is off; 429 (never
processed) is retried through `obey_rate_limit`, and after a failed create we look for the one-off marker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from cml_action.ci.context import CIContext
from cml_action.errors import ForgeError, PermissionDenied, TokenRefused, UserError
from cml_action.forges.base import Destination, Image, Posted, Target, resolve_target
from cml_action.retry import pause

T = TypeVar("T")
ATTEMPTS = 4
TOKEN_HINT = ("a project access token (role Reporter or higher, scope `api`) stored as a masked CI/CD variable "
              "CML_TOKEN; CI_JOB_TOKEN cannot write notes")


def server_from_api(api_url: str) -> str:
    return api_url.removesuffix("/api/v4")


class GitLabForge:
    name = "gitlab"
    body_limit = 1_000_000

    def __init__(self, ctx: CIContext, token: str, token_source: str = "") -> None:
        import gitlab

        if not ctx.api_url or not ctx.project_id:
            raise UserError("CI_API_V4_URL and CI_PROJECT_ID are not set: cannot post to GitLab")
        self.ctx = ctx
        self.job_token = token_source == "CI_JOB_TOKEN"
        auth = {"job_token": token} if self.job_token else {"private_token": token}
        # 429 is honoured per request (python-gitlab's obey_rate_limit default, Retry-After); 5xx is ours to handle
        self._gl = gitlab.Gitlab(server_from_api(ctx.api_url), retry_transient_errors=False, timeout=30, **auth)
        self._project = self._gl.projects.get(ctx.project_id, lazy=True)
        self._user_id: int | None = None

    # --- errors ---------------------------------------------------------------------------------
    def _denied(self, what: str) -> PermissionDenied:
        return PermissionDenied(f"the token may not {what}: use {TOKEN_HINT}", "api scope (CML_TOKEN)")

    def _call(self, what: str, fn: Callable[[], T], landed: Callable[[], T | None] | None = None) -> T:
        """Reads and repeatable writes are asked again after a 5xx; a create (`landed` given) only after looking
        whether it landed with its response lost, so nothing is ever posted twice."""
        from gitlab.exceptions import GitlabError

        for attempt in range(ATTEMPTS):
            try:
                return fn()
            except GitlabError as exc:
                code = getattr(exc, "response_code", None) or 0
                if code == 401 and not self.job_token:
                    raise TokenRefused(f"the token was refused (401 Unauthorized) while trying to {what}") from None
                if code in (401, 403):
                    raise self._denied(what) from None
                if code < 500 or attempt == ATTEMPTS - 1:
                    raise ForgeError(f"GitLab failed to {what}: {code or ''} {exc.error_message}".strip()) from None
            if landed is not None:
                found = landed()
                if found is not None:
                    return found
            pause(attempt)
        raise ForgeError(f"GitLab failed to {what}")  # pragma: no cover

    # --- targets --------------------------------------------------------------------------------
    def resolve(self, target: Target) -> list[Destination]:
        return resolve_target(target, self.ctx.sha, self.ctx.pr_number, self._open_mrs_for, "merge request")

    def _open_mrs_for(self, sha: str) -> list[int]:
        if not sha:
            return []
        commit = self._project.commits.get(sha, lazy=True)
        mrs = self._call("list merge requests of the commit", lambda: commit.merge_requests())
        return [mr["iid"] for mr in mrs if mr.get("state") == "opened" and mr.get("sha") in (sha, None)]

    # --- images ---------------------------------------------------------------------------------
    def upload_images(self, images: list[Image]) -> dict[str, str]:
        urls = {}
        for image in images:
            name = os.path.basename(image.rel)
            data = image.path.read_bytes()
            # an upload is harmless to repeat (a new secret path); no lookup needed after a lost response
            def upload(name: str = name, data: bytes = data) -> dict:
                return self._project.upload(name, filedata=data)

            uploaded = self._call(f"upload image {name}", upload)
            urls[image.rel] = self._absolute(uploaded)
        return urls

    def _absolute(self, uploaded: dict) -> str:
        """GitLab answers with a project-relative `url`: absolute links also work in the job log, e-mail
        notifications and the artifact, where there is no project to resolve them against."""
        server = self.ctx.server_url or server_from_api(self.ctx.api_url)
        if self.ctx.repository:
            return f"{server}/{self.ctx.repository}{uploaded['url']}"
        full = uploaded.get("full_path") or uploaded["url"]
        return full if full.startswith("http") else f"{server}{full}"

    # --- notes ----------------------------------------------------------------------------------
    def _manager(self, dest: Destination) -> Any:
        if dest.kind == "pr":
            return self._project.mergerequests.get(dest.number, lazy=True).notes
        return self._project.issues.get(dest.number, lazy=True).notes

    def _web_url(self, dest: Destination, note_id: int | None = None) -> str:
        base = f"{self.ctx.server_url or server_from_api(self.ctx.api_url)}/{self.ctx.repository}/-"
        if dest.kind == "commit":
            return f"{base}/commit/{dest.sha}"
        kind = "merge_requests" if dest.kind == "pr" else "issues"
        return f"{base}/{kind}/{dest.number}" + (f"#note_{note_id}" if note_id else "")

    def identity(self) -> int:
        """The id of the user the token acts as (a project access token's bot user); -1 when unknown (a job
        token), so that no note is ever taken for ours."""
        if self._user_id is None:
            from gitlab.exceptions import GitlabError

            try:
                self._call("read the token's identity", self._gl.auth)
                self._user_id = int(self._gl.user.id)
            except (PermissionDenied, GitlabError, AttributeError):
                self._user_id = -1
        return self._user_id

    def post(self, dest: Destination, body: str, marker: str, update: bool) -> Posted:
        if dest.kind == "commit":
            return self._commit_comment(dest, body)
        notes = self._manager(dest)
        what = f"comment on {dest.describe()}"

        def newest_with(text: str, where: str = "start") -> Any:
            """Our newest note carrying `text` where we put it; a note by anyone else never counts."""
            me = self.identity()
            for note in notes.list(iterator=True, sort="desc", order_by="created_at"):
                content = (note.body or "").strip()
                placed = content.startswith(text) if where == "start" else content.endswith(text)
                if placed and (getattr(note, "author", None) or {}).get("id") == me:
                    return note
            return None

        if update:
            existing = self._call(what, lambda: newest_with(marker))
            if existing is not None:
                existing.body = body
                self._call(what, existing.save)  # PUT: repeating it is harmless
                return Posted(self._web_url(dest, existing.id), updated=True)
        once = f"<!-- cml-action:post:{uuid.uuid4().hex} -->"
        note = self._call(what, lambda: notes.create({"body": f"{body}\n{once}"}),
                          landed=lambda: self._call(what, lambda: newest_with(once, "end")))
        return Posted(self._web_url(dest, note.id), updated=False)

    def _commit_comment(self, dest: Destination, body: str) -> Posted:
        commit = self._project.commits.get(dest.sha, lazy=True)
        what = f"comment on {dest.describe()}"
        once = f"<!-- cml-action:post:{uuid.uuid4().hex} -->"

        def landed() -> Any:
            comments = self._call(what, lambda: commit.comments.list(get_all=True))
            return next((c for c in comments if once in (c.note or "")), None)

        self._call(what, lambda: commit.comments.create({"note": f"{body}\n{once}"}), landed=landed)
        print("cml-action: GitLab commit comments cannot be edited: posted a new comment on the commit")
        return Posted(self._web_url(dest), updated=False)

    # --- commit status ----------------------------------------------------------------------------
    def create_check(self, sha: str, name: str, summary: str, conclusion: str) -> str:
        state = {"success": "success", "failure": "failed"}.get(conclusion, "success")
        target = self.ctx.run_url or ""
        payload = {"state": state, "name": name, "description": f"cml-action: {conclusion}"[:255]}
        if target:
            payload["target_url"] = target
        commit = self._project.commits.get(sha, lazy=True)
        self._call(f"set the commit status of {sha[:7]}", lambda: commit.statuses.create(payload))
        return target
