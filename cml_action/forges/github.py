"""GitHub (github.com and Enterprise Server) through PyGithub.

Request budget for one report: images in one commit via GraphQL `createCommitOnBranch` (a query for
the branch tip + the mutation), then one page of comments and one create or edit. Objects are lazy
so PyGithub makes no request we did not ask for.

Never twice: POSTs are not retried blindly on 5xx (the comment may have been created and the
response lost). Each create carries a one-off marker; after a failed create we look for that marker
before trying again.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import PurePosixPath
from typing import Any, Callable, TypeVar

from cml_action.ci.context import CIContext
from cml_action.errors import ForgeError, PermissionDenied, TokenRefused, UserError
from cml_action.forges.base import Destination, Image, Posted, Target, resolve_target
from cml_action.retry import backoff_base, pause

T = TypeVar("T")

ATTEMPTS = 4
PERMISSION_HINT = {
    "comment": "pull-requests: write (and issues: write for issue targets; contents: write for commit comments)",
    "contents": "contents: write",
    "checks": "checks: write",
}




def _make_retry():
    from github import GithubRetry

    class SafeRetry(GithubRetry):
        """GitHub's own retry (secondary rate limits, Retry-After), but a POST that reached a failing server
        is never replayed here: the caller checks whether it landed first."""

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if method.upper() == "POST" and status_code >= 500:
                return False
            return super().is_retry(method, status_code, has_retry_after)

    return SafeRetry(total=ATTEMPTS, backoff_factor=backoff_base(), max_rate_limit_wait=600)


class GitHubForge:
    name = "github"
    body_limit = 65536
    WORKFLOW_BOT = "github-actions[bot]"

    def __init__(self, ctx: CIContext, token: str, assets_branch: str = "cml-assets") -> None:
        from github import Auth, Github

        if not ctx.repository or "/" not in ctx.repository:
            raise UserError("GITHUB_REPOSITORY is not set (owner/name): cannot post to GitHub")
        self.ctx = ctx
        self.assets_branch = assets_branch
        self._gh = Github(
            base_url=ctx.api_url,
            auth=Auth.Token(token),
            retry=_make_retry(),
            per_page=100,
            timeout=30,
            lazy=True,
            # PyGithub spaces requests (0.25 s, 1 s between writes) by default; a report makes at most a
            # handful of requests and honours Retry-After, so the pacing would only add seconds
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self._repo = self._gh.get_repo(ctx.repository, lazy=True)
        # an installation token (the workflow's GITHUB_TOKEN is one) is no user: `GET /user` would only refuse it
        self._login: str | None = self.WORKFLOW_BOT if token.startswith("ghs_") else None

    # --- errors ---------------------------------------------------------------------------------
    def _call(self, what: str, permission: str, fn: Callable[[], T]) -> T:
        from github import GithubException

        try:
            return fn()
        except GithubException as exc:
            raise self._translate(exc, what, permission) from None

    def _translate(self, exc: Any, what: str, permission: str) -> Exception:
        status = getattr(exc, "status", 0)
        message = ""
        if isinstance(getattr(exc, "data", None), dict):
            message = str(exc.data.get("message", ""))
        if status == 401:
            return TokenRefused(f"the token was refused (401 Bad credentials) while trying to {what}")
        if status == 403 and "rate limit" not in message.lower():
            hint = PERMISSION_HINT.get(permission, permission)
            return PermissionDenied(f"the token may not {what}: grant `{hint}` in the workflow's permissions", hint)
        if status == 404:
            return ForgeError(f"GitHub answered 404 while trying to {what}: check the repository and the token's access")
        return ForgeError(f"GitHub failed to {what}: {status} {message}".strip())

    # --- targets --------------------------------------------------------------------------------
    def resolve(self, target: Target) -> list[Destination]:
        return resolve_target(target, self.ctx.sha, self.ctx.pr_number, self._open_pulls_for, "pull request")

    def _open_pulls_for(self, sha: str) -> list[int]:
        if not sha:
            return []
        pulls = self._call("list pull requests", "comment", lambda: list(self._repo.get_commit(sha).get_pulls()))
        found = [p.number for p in pulls if p.state == "open" and p.head.sha == sha]
        if not found and self.ctx.head_label:
            found = self._open_pulls_from_head(sha, self.ctx.head_label)
        return found

    def _open_pulls_from_head(self, sha: str, head_label: str) -> list[int]:
        """A fork's commit is not associated with this repository's pull requests, and `workflow_run.pull_requests`
        is empty for a fork: list the open pull requests from the event's `owner:branch` and keep those whose head is
        still the commit the report describes. Only trusted event data is used, never the artifact."""
        pulls = self._call("list pull requests", "comment", lambda: list(self._repo.get_pulls(state="open", head=head_label)))
        return [p.number for p in pulls if p.head.sha == sha and p.head.label == head_label]

    # --- images ---------------------------------------------------------------------------------
    def upload_images(self, images: list[Image]) -> dict[str, str]:
        if not images:
            return {}
        files = {}
        for image in images:
            digest = image.digest()[:16]
            files[image.rel] = (f"images/{digest}/{PurePosixPath(image.rel).name}", image.path.read_bytes())
        nonce = uuid.uuid4().hex[:12]
        headline = f"cml-action: {len(files)} report image(s) for {self.ctx.sha[:7] or 'local'} [{nonce}]"
        oid = self._commit_files(list(files.values()), headline)
        base = f"{self.ctx.server_url}/{self.ctx.repository}/blob/{oid}"
        return {rel: f"{base}/{path}?raw=true" for rel, (path, _) in files.items()}

    _TIP = """query($owner: String!, $name: String!, $ref: String!) {
  repository(owner: $owner, name: $name) { ref(qualifiedName: $ref) { target { oid ... on Commit { message } } } }
}"""

    _COMMIT = """mutation($input: CreateCommitOnBranchInput!) {
  createCommitOnBranch(input: $input) { commit { oid } }
}"""

    def _graphql(self, query: str, variables: dict, what: str) -> dict:
        from github import GithubException

        try:
            _, data = self._gh.requester.graphql_query(query, variables)
        except GithubException as exc:
            errors = exc.data.get("errors", []) if isinstance(exc.data, dict) else []
            if any(e.get("type") == "FORBIDDEN" or "not accessible" in str(e.get("message", "")) for e in errors):
                raise PermissionDenied(f"the token may not {what}: grant `contents: write`", "contents: write") from None
            raise self._translate(exc, what, "contents") from None
        return data.get("data") or {}

    def _tip(self) -> tuple[str, str] | None:
        """The assets branch's tip (oid, message). A read, so a failing server is simply asked again."""
        variables = {"owner": self.ctx.owner, "name": self.ctx.repo_name, "ref": f"refs/heads/{self.assets_branch}"}
        for attempt in range(ATTEMPTS):
            try:
                data = self._graphql(self._TIP, variables, "read the assets branch")
                break
            except (PermissionDenied, TokenRefused):
                raise
            except ForgeError:
                if attempt == ATTEMPTS - 1:
                    raise
                pause(attempt)
        ref = (data.get("repository") or {}).get("ref")
        if not ref:
            return None
        return ref["target"]["oid"], ref["target"].get("message", "")

    def _commit_files(self, files: list[tuple[str, bytes]], headline: str) -> str:
        from github import GithubException

        tip = self._tip()
        oid = tip[0] if tip else self._create_assets_branch()
        additions = [{"path": path, "contents": base64.b64encode(data).decode()} for path, data in files]
        for attempt in range(ATTEMPTS):
            variables = {
                "input": {
                    "branch": {"repositoryNameWithOwner": self.ctx.repository, "branchName": self.assets_branch},
                    "expectedHeadOid": oid,
                    "message": {"headline": headline},
                    "fileChanges": {"additions": additions},
                }
            }
            try:
                data = self._graphql(self._COMMIT, variables, f"commit images to branch {self.assets_branch}")
                return data["createCommitOnBranch"]["commit"]["oid"]
            except ForgeError as exc:
                if isinstance(exc, (PermissionDenied, TokenRefused)) or attempt == ATTEMPTS - 1:
                    raise
            except GithubException:
                if attempt == ATTEMPTS - 1:
                    raise
            # the commit may have landed with its response lost, or the branch moved: look before retrying
            tip = self._tip()
            if tip and headline in tip[1]:
                return tip[0]
            oid = tip[0] if tip else oid
            pause(attempt)
        raise ForgeError("could not commit the report images")  # pragma: no cover - loop always returns or raises

    def _create_assets_branch(self) -> str:
        """An orphan branch, so image commits never mix with the code's history."""
        from github import InputGitTreeElement

        readme = (
            "# Report images\n\nImages of cml-action reports, linked from pull requests and commits.\n"
            "Safe to delete; reports that link here will lose their images.\n"
        )
        what = f"create the branch {self.assets_branch} for report images"

        from github import GithubException

        def create() -> str:
            tree = self._repo.create_git_tree([InputGitTreeElement("README.md", "100644", "blob", content=readme)])
            commit = self._repo.create_git_commit("cml-action: start the report images branch", tree, [])
            try:
                self._repo.create_git_ref(f"refs/heads/{self.assets_branch}", commit.sha)
            except GithubException as exc:
                if exc.status != 422:
                    raise
                # a parallel job (a matrix) created the branch first: use theirs
                tip = self._tip()
                if tip is None:
                    raise
                return tip[0]
            return commit.sha

        return self._call(what, "contents", create)

    # --- comments -------------------------------------------------------------------------------
    def _comment_api(self, dest: Destination):
        if dest.kind == "commit":
            commit = self._repo.get_commit(dest.sha)
            return commit.get_comments, commit.create_comment
        issue = self._repo.get_issue(dest.number)
        return issue.get_comments, issue.create_comment

    def identity(self) -> str:
        """The login our comments are written by: the token's own user, or github-actions[bot] for the workflow's
        token (an installation token, which `GET /user` refuses with 403)."""
        if self._login is None:
            from github import GithubException

            try:
                self._login = self._gh.get_user().login
            except GithubException as exc:
                if exc.status != 403:
                    raise self._translate(exc, "read the token's identity", "metadata") from None
                self._login = self.WORKFLOW_BOT
        return self._login

    def post(self, dest: Destination, body: str, marker: str, update: bool) -> Posted:
        from github import GithubException

        list_comments, create = self._comment_api(dest)
        what = f"comment on {dest.describe()}"

        def last_with(text: str, where: str = "start"):
            """Our latest comment carrying `text` (first line: the sticky marker; last line: a one-off marker).
            Only a comment written by our own identity counts: a marker is text anyone can copy."""
            me = self.identity()
            found = None
            for comment in list_comments():
                content = (comment.body or "").strip()
                placed = content.startswith(text) if where == "start" else content.endswith(text)
                if placed and comment.user is not None and comment.user.login == me:
                    found = comment
            return found

        if update:
            existing = self._call(what, "comment", lambda: last_with(marker))
            if existing is not None:
                self._call(what, "comment", lambda: existing.edit(body))
                return Posted(existing.html_url, updated=True)
        once = f"<!-- cml-action:post:{uuid.uuid4().hex} -->"
        stamped = f"{body}\n{once}"
        for attempt in range(ATTEMPTS):
            try:
                return Posted(create(stamped).html_url, updated=False)
            except GithubException as exc:
                if exc.status < 500 or attempt == ATTEMPTS - 1:
                    raise self._translate(exc, what, "comment") from None
            landed = self._call(what, "comment", lambda: last_with(once, "end"))
            if landed is not None:
                return Posted(landed.html_url, updated=False)
            pause(attempt)
        raise ForgeError(f"could not {what}")  # pragma: no cover

    # --- checks ---------------------------------------------------------------------------------
    def create_check(self, sha: str, name: str, summary: str, conclusion: str) -> str:
        from github import GithubException

        output = {"title": name, "summary": summary[:65535]}
        external = uuid.uuid4().hex
        for attempt in range(ATTEMPTS):
            try:
                run = self._repo.create_check_run(
                    name=name, head_sha=sha, status="completed", conclusion=conclusion, output=output, external_id=external
                )
                return run.html_url
            except GithubException as exc:
                if exc.status < 500 or attempt == ATTEMPTS - 1:
                    raise self._translate(exc, f"create a check run on {sha[:7]}", "checks") from None
            found = self._call(
                "list check runs", "checks",
                lambda: [r for r in self._repo.get_commit(sha).get_check_runs(check_name=name) if r.external_id == external],
            )
            if found:
                return found[0].html_url
            pause(attempt)
        raise ForgeError("could not create the check run")  # pragma: no cover
