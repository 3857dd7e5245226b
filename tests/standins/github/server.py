"""GitHub, as far as cml-action sees it: comments, pull requests, git data, check runs, runners, GraphQL.

Every REST request is checked against GitHub's OpenAPI description (vendored subset, see spec/SOURCE.md)
before it is served; tokens carry the same permission names as a workflow's `permissions:` block, and
a request the token may not make is refused the way GitHub refuses it (403 "Resource not accessible
by integration"). The web side serves `/{owner}/{repo}/blob/{sha}/{path}?raw=true` like github.com does.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

from standins.github.graphql_api import Refusal, execute
from standins.github.openapi import OpenAPI
from standins.server import Request, Response, StandIn

SPEC_FILE = Path(__file__).parent / "spec" / "api.github.com.subset.json.gz"
API = "/api/v3"
FORBIDDEN = {"message": "Resource not accessible by integration",
             "documentation_url": "https://docs.github.com/rest", "status": "403"}
USER = {"login": "github-actions[bot]", "id": 41898282, "node_id": "MDM6Qm90NDE4OTgyODI=", "type": "Bot",
        "site_admin": False}
LEVEL = {"none": 0, "read": 1, "write": 2, "admin": 3}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Runner:
    id: int
    name: str
    labels: list[str]
    jit_config: str
    status: str = "offline"
    busy: bool = False
    polls: int = 0


@dataclass
class Repo:
    full_name: str
    default_branch: str
    private: bool
    pulls: dict[int, dict] = field(default_factory=dict)
    comments: dict[int, dict] = field(default_factory=dict)  # id -> comment (with "_on": ("issue", n) | ("commit", sha))
    commits: dict[str, dict] = field(default_factory=dict)  # sha -> {"files": {path: bytes}, "message", "parents"}
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/x" -> sha
    check_runs: dict[int, dict] = field(default_factory=dict)
    runners: dict[int, Runner] = field(default_factory=dict)
    runs: dict[int, dict] = field(default_factory=dict)
    reruns: list[int] = field(default_factory=list)
    dispatches: list[dict] = field(default_factory=list)


class GitHubStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.spec = OpenAPI.load(SPEC_FILE)
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, dict[str, str]] = {}
        self.logins: dict[str, str] = {}  # token -> login of the user it belongs to (absent: the workflow's token)
        self.before: list[tuple[str, re.Pattern[str], Callable[[], None]]] = []  # (method, path, what happens first)
        self._ids = itertools.count(1000)
        self.runner_online_after: int | None = None  # polls of a runner before it reports online (None: never by itself)
        self._routes_setup()

    # --- test-facing setup ----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.url + API

    @property
    def graphql_url(self) -> str:
        return self.url + "/api/graphql"

    @property
    def server_url(self) -> str:
        return self.url

    def add_repo(self, full_name: str, default_branch: str = "main", private: bool = False) -> Repo:
        self.repos[full_name] = Repo(full_name, default_branch, private)
        return self.repos[full_name]

    def add_token(self, token: str, permissions: dict[str, str], login: str | None = None) -> None:
        """`permissions` as in a workflow: {"contents": "write", "pull_requests": "write", ...}. Without `login`
        it is the workflow's GITHUB_TOKEN (an installation token: its comments are github-actions[bot]'s, and
        `GET /user` is refused); with one, a person's token (a PAT)."""
        self.tokens[token] = {k.replace("-", "_"): v for k, v in permissions.items()}
        if login:
            self.logins[token] = login

    def user_of(self, token: str) -> dict:
        login = self.logins.get(token)
        if login is None:
            return USER
        return {"login": login, "id": 5000 + len(login), "node_id": f"U_{login}", "type": "User", "site_admin": False}

    def meanwhile(self, method: str, path_regex: str, action: Callable[[], None]) -> None:
        """Run `action` just before the next matching request is served: another job getting there first."""
        with self.lock:
            self.before.append((method.upper(), re.compile(path_regex), action))

    def create_branch(self, full_name: str, branch: str, files: dict[str, bytes]) -> str:
        """A branch made by someone else (a parallel job), with one orphan commit holding `files`."""
        repo = self.repos[full_name]
        with self.lock:
            sha = self._sha("commit", branch, self.next_id())
            repo.commits[sha] = {"tree": "", "files": dict(files), "message": f"start {branch}", "parents": []}
            repo.refs[f"refs/heads/{branch}"] = sha
        return sha

    def add_pull(self, full_name: str, number: int, head_sha: str, head_ref: str, base_ref: str,
                 state: str = "open", head_repo: str | None = None) -> None:
        """`head_repo`: the fork the pull request comes from ("owner/name"); None for a branch of this repository.
        As on GitHub, a fork's commits are not associated with this repository's pull requests
        (`GET .../commits/{sha}/pulls` does not list them); `GET .../pulls?head=owner:branch` does."""
        repo = self.repos[full_name]
        with self.lock:
            repo.pulls[number] = {"number": number, "state": state, "head_sha": head_sha, "head_ref": head_ref,
                                  "base_ref": base_ref, "head_repo": head_repo or full_name}

    def add_comment(self, full_name: str, number: int, body: str, login: str = "reviewer") -> None:
        """Someone else's comment on an issue or pull request (reviews pile up between reports)."""
        repo = self.repos[full_name]
        with self.lock:
            cid = self.next_id()
            user = USER if login == USER["login"] else {**USER, "login": login, "type": "User", "id": 6000 + len(login)}
            repo.comments[cid] = {"id": cid, "node_id": f"IC_{cid}", "body": body, "user": user,
                                  "created_at": _now(), "updated_at": _now(), "author_association": "MEMBER",
                                  "_on": ("issue", number)}

    def add_run(self, full_name: str, run_id: int, conclusion: str = "failure", completes_after: int = 0) -> None:
        """A workflow run; it reports `in_progress` for its first `completes_after` reads."""
        with self.lock:
            self.repos[full_name].runs[run_id] = {"conclusion": conclusion, "reads_left": completes_after}

    def set_runner(self, full_name: str, name: str, status: str = "online", busy: bool = False) -> None:
        with self.lock:
            for runner in self.repos[full_name].runners.values():
                if runner.name == name:
                    runner.status, runner.busy = status, busy

    def runners(self, full_name: str) -> list[Runner]:
        with self.lock:
            return list(self.repos[full_name].runners.values())

    def next_id(self) -> int:
        return next(self._ids)

    # --- plumbing ------------------------------------------------------------------------------
    def check(self, request: Request, handler: Callable, groups: dict[str, str]) -> None:
        if request.path.startswith(API + "/"):
            self.spec.check(request, request.path[len(API):])
        with self.lock:
            due = [b for b in self.before if b[0] == request.method and b[1].search(request.path)]
            for hook in due[:1]:
                self.before.remove(hook)
                hook[2]()

    def _token(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() in ("token", "bearer") else ""

    def authenticate(self, request: Request) -> Response | None:
        if not request.path.startswith("/api/"):
            return None  # the web side: a signed-in reader with access
        if self._token(request) not in self.tokens:
            return Response(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                                  "status": "401"})
        return None

    def allowed(self, request: Request, permission: str, level: str) -> bool:
        granted = self.tokens.get(self._token(request), {})
        return LEVEL[granted.get(permission, "none")] >= LEVEL[level]

    def api(self, method: str, template: str, handler: Callable[..., Any],
            permission: str | tuple[str, ...] | None, level: str = "read") -> None:
        """A REST route; `permission` (or any of several) must be granted at `level`."""
        names = (permission,) if isinstance(permission, str) else permission or ()

        def guarded(request: Request, **groups: str) -> Any:
            if names and not any(self.allowed(request, n, level) for n in names):
                return Response(403, FORBIDDEN)
            repo = self.repos.get(f"{groups.pop('owner', '')}/{groups.pop('repo', '')}")
            if repo is None:
                return Response(404, {"message": "Not Found"})
            return handler(request, repo, **groups)

        pattern = template.replace("{owner}", "(?P<owner>[^/]+)").replace("{repo}", "(?P<repo>[^/]+)")
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self.route(method, API + pattern, guarded)

    def _page(self, request: Request, items: list[Any], wrap: str | None = None) -> Response:
        per_page = min(int(request.arg("per_page", "30")), 100)
        page = max(int(request.arg("page", "1")), 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        base = {k: v[0] for k, v in request.query.items()}
        if page < last:
            links.append(f'<{self.url}{request.path}?{urlencode({**base, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.url}{request.path}?{urlencode({**base, "page": last})}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        body = {"total_count": len(items), wrap: chunk} if wrap else chunk
        return Response(200, body, headers)

    # --- routes --------------------------------------------------------------------------------
    def _routes_setup(self) -> None:
        a = self.api
        self.route("GET", API + "/user", self._get_user)
        a("GET", "/repos/{owner}/{repo}", self._get_repo, "metadata")
        a("GET", "/repos/{owner}/{repo}/commits/{sha}/pulls", self._pulls_for_commit, "pull_requests")
        a("GET", "/repos/{owner}/{repo}/pulls/{number}", self._get_pull, "pull_requests")
        a("GET", "/repos/{owner}/{repo}/pulls", self._list_pulls, "pull_requests")
        a("GET", "/repos/{owner}/{repo}/issues/{number}/comments", self._list_issue_comments, ("issues", "pull_requests"))
        a("POST", "/repos/{owner}/{repo}/issues/{number}/comments", self._create_issue_comment,
          ("issues", "pull_requests"), "write")
        a("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", self._edit_comment,
          ("issues", "pull_requests"), "write")
        a("GET", "/repos/{owner}/{repo}/commits/{sha}/comments", self._list_commit_comments, "contents")
        a("POST", "/repos/{owner}/{repo}/commits/{sha}/comments", self._create_commit_comment, "contents", "write")
        a("PATCH", "/repos/{owner}/{repo}/comments/{comment_id}", self._edit_comment, "contents", "write")
        a("POST", "/repos/{owner}/{repo}/git/trees", self._create_tree, "contents", "write")
        a("POST", "/repos/{owner}/{repo}/git/commits", self._create_commit, "contents", "write")
        a("POST", "/repos/{owner}/{repo}/git/refs", self._create_ref, "contents", "write")
        a("POST", "/repos/{owner}/{repo}/check-runs", self._create_check_run, "checks", "write")
        a("GET", "/repos/{owner}/{repo}/check-runs/{run_id}", self._get_check_run, "checks")
        a("GET", "/repos/{owner}/{repo}/commits/{sha}/check-runs", self._list_check_runs, "checks")
        a("POST", "/repos/{owner}/{repo}/actions/runners/generate-jitconfig", self._jitconfig, "administration", "write")
        a("GET", "/repos/{owner}/{repo}/actions/runners", self._list_runners, "administration")
        a("GET", "/repos/{owner}/{repo}/actions/runners/{runner_id}", self._get_runner, "administration")
        a("DELETE", "/repos/{owner}/{repo}/actions/runners/{runner_id}", self._delete_runner, "administration", "write")
        a("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", self._get_run, "actions")
        a("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs", self._rerun, "actions", "write")
        a("POST", "/repos/{owner}/{repo}/dispatches", self._dispatch_event, "contents", "write")
        self.route("POST", "/api/graphql", self._graphql)
        self.route("GET", r"/(?P<owner>[^/]+)/(?P<name>[^/]+)/blob/(?P<sha>[0-9a-f]{40})/(?P<path>.+)", self._blob)

    def _get_user(self, request: Request) -> Response:
        token = self._token(request)
        if token not in self.logins:
            return Response(403, FORBIDDEN)  # an installation token is no user
        return Response(200, {**self.user_of(token), "url": f"{self.api_url}/users/{self.logins[token]}",
                              "html_url": f"{self.url}/{self.logins[token]}"})

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.api_url}/repos/{repo.full_name}"

    def _get_repo(self, request: Request, repo: Repo) -> dict:
        return {"id": 1, "name": repo.full_name.split("/")[1], "full_name": repo.full_name, "private": repo.private,
                "default_branch": repo.default_branch, "url": self._repo_url(repo),
                "html_url": f"{self.url}/{repo.full_name}"}

    def _pull_json(self, repo: Repo, pull: dict) -> dict:
        n = pull["number"]
        return {"id": n, "node_id": f"PR_{n}", "number": n, "state": pull["state"], "title": f"PR {n}",
                "url": f"{self._repo_url(repo)}/pulls/{n}", "html_url": f"{self.url}/{repo.full_name}/pull/{n}",
                "head": {"sha": pull["head_sha"], "ref": pull["head_ref"], "label": self._label(pull),
                         "repo": {"full_name": pull.get("head_repo", repo.full_name)}},
                "base": {"ref": pull["base_ref"], "label": f"{repo.full_name.split('/')[0]}:{pull['base_ref']}",
                         "repo": {"full_name": repo.full_name}}}

    @staticmethod
    def _label(pull: dict) -> str:
        return f"{pull['head_repo'].split('/')[0]}:{pull['head_ref']}"

    def _pulls_for_commit(self, request: Request, repo: Repo, sha: str) -> Response:
        found = [self._pull_json(repo, p) for p in repo.pulls.values()
                 if p["head_sha"] == sha and p.get("head_repo", repo.full_name) == repo.full_name]
        return self._page(request, found)

    def _list_pulls(self, request: Request, repo: Repo) -> Response:
        state = request.arg("state", "open")
        head, base = request.arg("head"), request.arg("base")
        if head is not None and ":" not in head:
            head = f"{repo.full_name.split('/')[0]}:{head}"  # GitHub reads a bare branch as this owner's
        found = [self._pull_json(repo, p) for _, p in sorted(repo.pulls.items(), reverse=True)
                 if state in ("all", p["state"]) and (head is None or self._label(p) == head)
                 and (base is None or p["base_ref"] == base)]
        return self._page(request, found)

    def _get_pull(self, request: Request, repo: Repo, number: str) -> Any:
        pull = repo.pulls.get(int(number))
        return self._pull_json(repo, pull) if pull else Response(404, {"message": "Not Found"})

    # comments
    def _comment_json(self, repo: Repo, comment: dict) -> dict:
        kind, where = comment["_on"]
        public = {k: v for k, v in comment.items() if not k.startswith("_")}
        if kind == "issue":
            public["url"] = f"{self._repo_url(repo)}/issues/comments/{comment['id']}"
            public["html_url"] = f"{self.url}/{repo.full_name}/pull/{where}#issuecomment-{comment['id']}"
            public["issue_url"] = f"{self._repo_url(repo)}/issues/{where}"
        else:
            public["url"] = f"{self._repo_url(repo)}/comments/{comment['id']}"
            public["html_url"] = f"{self.url}/{repo.full_name}/commit/{where}#commitcomment-{comment['id']}"
            public["commit_id"] = where
        return public

    def _comments_on(self, repo: Repo, on: tuple[str, Any]) -> list[dict]:
        return [self._comment_json(repo, c) for c in sorted(repo.comments.values(), key=lambda c: c["id"])
                if c["_on"] == on]

    def _new_comment(self, request: Request, repo: Repo, on: tuple[str, Any]) -> Response:
        body = request.json().get("body", "")
        if len(body) > 65536:
            return Response(422, {"message": "Validation Failed", "errors": [
                {"resource": "IssueComment", "code": "custom", "field": "body",
                 "message": "body is too long (maximum is 65536 characters)"}]})
        cid = self.next_id()
        repo.comments[cid] = {"id": cid, "node_id": f"IC_{cid}", "body": body, "user": self.user_of(self._token(request)),
                              "created_at": _now(),
                              "updated_at": _now(), "author_association": "NONE", "_on": on}
        return Response(201, self._comment_json(repo, repo.comments[cid]))

    def _list_issue_comments(self, request: Request, repo: Repo, number: str) -> Response:
        return self._page(request, self._comments_on(repo, ("issue", int(number))))

    def _create_issue_comment(self, request: Request, repo: Repo, number: str) -> Response:
        if int(number) not in repo.pulls and not self.allowed(request, "issues", "write"):
            return Response(403, FORBIDDEN)  # an issue (not a pull request) needs issues: write
        return self._new_comment(request, repo, ("issue", int(number)))

    def _list_commit_comments(self, request: Request, repo: Repo, sha: str) -> Response:
        return self._page(request, self._comments_on(repo, ("commit", sha)))

    def _create_commit_comment(self, request: Request, repo: Repo, sha: str) -> Response:
        return self._new_comment(request, repo, ("commit", sha))

    def _edit_comment(self, request: Request, repo: Repo, comment_id: str) -> Any:
        comment = repo.comments.get(int(comment_id))
        kind = "issue" if "/issues/comments/" in request.path else "commit"
        if comment is None or comment["_on"][0] != kind:
            return Response(404, {"message": "Not Found"})
        token = self._token(request)
        if token not in self.logins and comment["user"]["login"] != USER["login"]:
            return Response(403, FORBIDDEN)  # the workflow's token edits only github-actions[bot]'s comments
        body = request.json().get("body", "")
        if len(body) > 65536:
            return Response(422, {"message": "Validation Failed"})
        comment["body"], comment["updated_at"] = body, _now()
        return self._comment_json(repo, comment)

    # git data
    @staticmethod
    def _sha(*parts: Any) -> str:
        return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def _create_tree(self, request: Request, repo: Repo) -> Response:
        data = request.json()
        files = dict(repo.trees.get(data.get("base_tree", ""), {}))
        for entry in data["tree"]:
            if "content" in entry:
                files[entry["path"]] = entry["content"].encode()
        sha = self._sha("tree", {k: hashlib.sha1(v).hexdigest() for k, v in files.items()})
        repo.trees[sha] = files
        return Response(201, {"sha": sha, "url": f"{self._repo_url(repo)}/git/trees/{sha}", "truncated": False,
                              "tree": [{"path": p, "mode": "100644", "type": "blob", "size": len(b)}
                                       for p, b in files.items()]})

    def _commit_json(self, repo: Repo, sha: str) -> dict:
        commit = repo.commits[sha]
        return {"sha": sha, "node_id": f"C_{sha[:8]}", "url": f"{self._repo_url(repo)}/git/commits/{sha}",
                "html_url": f"{self.url}/{repo.full_name}/commit/{sha}", "message": commit["message"],
                "tree": {"sha": commit["tree"], "url": ""}, "parents": [{"sha": p} for p in commit["parents"]],
                "author": {"name": "t", "email": "t@example.com", "date": _now()},
                "committer": {"name": "t", "email": "t@example.com", "date": _now()},
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None}}

    def _create_commit(self, request: Request, repo: Repo) -> Response:
        data = request.json()
        if data["tree"] not in repo.trees:
            return Response(422, {"message": "Tree SHA does not exist"})
        sha = self._sha("commit", data, self.next_id())
        repo.commits[sha] = {"tree": data["tree"], "files": repo.trees[data["tree"]], "message": data["message"],
                             "parents": data.get("parents", [])}
        return Response(201, self._commit_json(repo, sha))

    def _create_ref(self, request: Request, repo: Repo) -> Response:
        data = request.json()
        if data["ref"] in repo.refs:
            return Response(422, {"message": "Reference already exists"})
        if data["sha"] not in repo.commits:
            return Response(422, {"message": "Object does not exist"})
        repo.refs[data["ref"]] = data["sha"]
        return Response(201, {"ref": data["ref"], "node_id": "REF_1", "url": f"{self._repo_url(repo)}/git/{data['ref']}",
                              "object": {"type": "commit", "sha": data["sha"], "url": ""}})

    def _blob(self, request: Request, owner: str, name: str, sha: str, path: str) -> Response:
        repo = self.repos.get(f"{owner}/{name}")
        commit = repo.commits.get(sha) if repo else None
        if commit is None or path not in commit["files"]:
            return Response(404, "Not Found")
        if request.arg("raw") != "true":
            return Response(200, f"<html><body>{path}</body></html>", {"Content-Type": "text/html"})
        kind = "image/png" if path.endswith(".png") else "application/octet-stream"
        return Response(200, commit["files"][path], {"Content-Type": kind})

    def files_at(self, full_name: str, ref: str) -> dict[str, bytes]:
        repo = self.repos[full_name]
        sha = repo.refs.get(ref, ref)
        return dict(repo.commits[sha]["files"])

    # check runs
    def _check_json(self, repo: Repo, run: dict) -> dict:
        return {**run, "node_id": f"CR_{run['id']}", "url": f"{self._repo_url(repo)}/check-runs/{run['id']}",
                "html_url": f"{self.url}/{repo.full_name}/runs/{run['id']}", "details_url": None,
                "check_suite": {"id": 1}, "app": None, "pull_requests": []}

    def _create_check_run(self, request: Request, repo: Repo) -> Response:
        data = request.json()
        rid = self.next_id()
        output = data.get("output") or {}
        repo.check_runs[rid] = {"id": rid, "name": data["name"], "head_sha": data["head_sha"],
                                "external_id": data.get("external_id", ""), "status": data.get("status", "queued"),
                                "conclusion": data.get("conclusion"), "started_at": _now(), "completed_at": _now(),
                                "output": {"title": output.get("title"), "summary": output.get("summary"),
                                           "text": output.get("text"), "annotations_count": 0,
                                           "annotations_url": ""}}
        return Response(201, self._check_json(repo, repo.check_runs[rid]))

    def _get_check_run(self, request: Request, repo: Repo, run_id: str) -> Any:
        run = repo.check_runs.get(int(run_id))
        return self._check_json(repo, run) if run else Response(404, {"message": "Not Found"})

    def _list_check_runs(self, request: Request, repo: Repo, sha: str) -> Response:
        name = request.arg("check_name")
        runs = [self._check_json(repo, r) for r in repo.check_runs.values()
                if r["head_sha"] == sha and (name is None or r["name"] == name)]
        return self._page(request, runs, "check_runs")

    # self-hosted runners
    def _runner_json(self, runner: Runner) -> dict:
        return {"id": runner.id, "name": runner.name, "os": "linux", "status": runner.status, "busy": runner.busy,
                "labels": [{"id": i + 1, "name": n, "type": "custom" if i else "read-only"}
                           for i, n in enumerate(["self-hosted", *runner.labels])]}

    def _jitconfig(self, request: Request, repo: Repo) -> Response:
        data = request.json()
        if any(r.name == data["name"] for r in repo.runners.values()):
            return Response(409, {"message": "Already exists - A runner with the name already exists."})
        rid = self.next_id()
        secret = base64.b64encode(json.dumps({".runner": {"agentId": rid, "agentName": data["name"]},
                                              "nonce": self._sha(rid)}).encode()).decode()
        repo.runners[rid] = Runner(rid, data["name"], list(data["labels"]), secret)
        return Response(201, {"runner": self._runner_json(repo.runners[rid]), "encoded_jit_config": secret})

    def _poll(self, runner: Runner) -> None:
        runner.polls += 1
        if self.runner_online_after is not None and runner.polls > self.runner_online_after and runner.status == "offline":
            runner.status = "online"

    def _list_runners(self, request: Request, repo: Repo) -> Response:
        name = request.arg("name")
        found = [r for r in repo.runners.values() if name is None or r.name == name]
        for runner in found:
            self._poll(runner)
        return self._page(request, [self._runner_json(r) for r in found], "runners")

    def _get_runner(self, request: Request, repo: Repo, runner_id: str) -> Any:
        runner = repo.runners.get(int(runner_id))
        if runner is None:
            return Response(404, {"message": "Not Found"})
        self._poll(runner)
        return self._runner_json(runner)

    def _delete_runner(self, request: Request, repo: Repo, runner_id: str) -> Response:
        runner = repo.runners.get(int(runner_id))
        if runner is None:
            return Response(404, {"message": "Not Found"})
        if runner.busy:
            return Response(422, {"message": "Bad request - Runner \"%s\" is still running a job\"" % runner.name})
        del repo.runners[int(runner_id)]
        return Response(204)

    def _get_run(self, request: Request, repo: Repo, run_id: str) -> Any:
        run = repo.runs.get(int(run_id))
        if run is None:
            return Response(404, {"message": "Not Found"})
        running = run["reads_left"] > 0
        run["reads_left"] = max(run["reads_left"] - 1, 0)
        return {"id": int(run_id), "status": "in_progress" if running else "completed",
                "conclusion": None if running else run["conclusion"],
                "html_url": f"{self.url}/{repo.full_name}/actions/runs/{run_id}"}

    def _rerun(self, request: Request, repo: Repo, run_id: str) -> Any:
        run = repo.runs.get(int(run_id))
        if run is None:
            return Response(404, {"message": "Not Found"})
        if run["reads_left"] > 0:
            return Response(403, {"message": "This workflow run is not completed yet."})
        repo.reruns.append(int(run_id))
        return Response(201, {})

    def _dispatch_event(self, request: Request, repo: Repo) -> Response:
        repo.dispatches.append(request.json())
        return Response(204)

    # GraphQL
    def _graphql(self, request: Request) -> Response:
        payload = request.json() or {}
        document = payload.get("query", "")
        token_ok = self._token(request) in self.tokens
        if not token_ok:
            return Response(401, {"message": "Bad credentials"})
        standin = self

        def repository(info: Any, owner: str, name: str, **_: Any) -> dict | None:
            repo = standin.repos.get(f"{owner}/{name}")
            if repo is None:
                return None

            def ref(info: Any, qualifiedName: str, **_: Any) -> dict | None:  # noqa: N803 - GraphQL's argument name
                sha = repo.refs.get(qualifiedName)
                if sha is None:
                    return None
                return {"name": qualifiedName.rsplit("/", 1)[-1],
                        "target": {"__typename": "Commit", "oid": sha, "message": repo.commits[sha]["message"]}}

            return {"nameWithOwner": repo.full_name, "ref": ref}

        def create_commit_on_branch(info: Any, input: dict, **_: Any) -> dict:  # noqa: A002 - GraphQL's argument name
            if not standin.allowed(request, "contents", "write"):
                raise Refusal("FORBIDDEN", "Resource not accessible by integration")
            branch = input["branch"]
            repo = standin.repos.get(branch.get("repositoryNameWithOwner", ""))
            if repo is None:
                raise Refusal("NOT_FOUND", "Could not resolve to a Repository")
            ref = f"refs/heads/{branch['branchName']}"
            tip = repo.refs.get(ref)
            if tip is None:
                raise Refusal("UNPROCESSABLE", f"A ref named \"{branch['branchName']}\" does not exist")
            if tip != input["expectedHeadOid"]:
                raise Refusal("STALE_DATA", f"Expected branch to point to \"{input['expectedHeadOid']}\" but it did "
                                            "not. Pull and try again.")
            files = dict(repo.commits[tip]["files"])
            for add in (input.get("fileChanges") or {}).get("additions") or []:
                files[add["path"]] = base64.b64decode(add["contents"])
            for gone in (input.get("fileChanges") or {}).get("deletions") or []:
                files.pop(gone["path"], None)
            message = input["message"]["headline"] + ("\n\n" + input["message"]["body"] if input["message"].get("body") else "")
            sha = standin._sha("commit", tip, message, standin.next_id())
            repo.commits[sha] = {"tree": "", "files": files, "message": message, "parents": [tip]}
            repo.refs[ref] = sha
            return {"commit": {"oid": sha, "url": f"{standin.url}/{repo.full_name}/commit/{sha}"}}

        body, violations = execute(document, payload.get("variables"),
                                   {"repository": repository, "createCommitOnBranch": create_commit_on_branch})
        self.violations.extend(violations)
        return Response(200, body)
