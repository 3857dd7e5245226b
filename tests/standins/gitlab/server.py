"""GitLab, as far as cml-action sees it: MR/issue notes, commit comments, uploads, statuses, runners.

Parameters are checked against the documented lists in params.py (missing required ones, wrong types and
values are violations; undeclared ones are dropped, as GitLab's API framework does); tokens are personal/project access
tokens (PRIVATE-TOKEN, with scopes) or a job token (JOB-TOKEN), which GitLab does not let write notes.
Lists are paginated the way GitLab paginates: newest first by default for notes, 20 per page, with
X-Next-Page / X-Total-Pages and Link headers.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlencode

from standins.gitlab.params import ENUMS, PARAMS
from standins.server import Request, Response, SpecViolation, StandIn

API = "/api/v4"
USER = {"id": 7, "username": "project_42_bot", "name": "cml bot", "state": "active"}
REVIEWER = {"id": 11, "username": "reviewer", "name": "A reviewer", "state": "active"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Project:
    id: int
    path: str
    mrs: dict[int, dict] = field(default_factory=dict)
    notes: dict[tuple[str, int], list[dict]] = field(default_factory=dict)  # ("mr"|"issue", iid) -> notes
    commit_comments: dict[str, list[dict]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)  # "/uploads/<secret>/<name>" -> bytes
    statuses: list[dict] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)


@dataclass
class Runner:
    id: int
    token: str
    description: str
    tags: list[str]
    project_id: int | None
    run_untagged: bool
    status: str = "never_contacted"


class GitLabStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[int, Project] = {}
        self.tokens: dict[str, tuple[str, tuple[str, ...]]] = {}  # token -> (kind, scopes)
        self.users: dict[str, dict] = {}  # token -> the user it acts as (project/group access tokens: a bot user)
        self.runners: dict[int, Runner] = {}
        self.ignored: list[tuple[str, str, str]] = []  # undeclared parameters GitLab would drop
        self.runners_come_online = False  # a launched VM's runner contacts GitLab (tests of runner-launch)
        self._ids = itertools.count(500)
        self._setup()

    # --- test-facing ---------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.url + API

    @property
    def server_url(self) -> str:
        return self.url

    def add_project(self, project_id: int, path: str) -> Project:
        self.projects[project_id] = Project(project_id, path)
        return self.projects[project_id]

    def add_token(self, token: str, scopes: tuple[str, ...] = ("api",), kind: str = "private",
                  user: dict | None = None) -> None:
        self.tokens[token] = (kind, tuple(scopes))
        if kind != "job":
            self.users[token] = user or USER

    def _token_of(self, request: Request) -> str:
        token = request.headers.get("private-token") or request.headers.get("job-token") or ""
        if not token and request.headers.get("authorization", "").lower().startswith("bearer "):
            token = request.headers["authorization"][7:]
        return token

    def add_mr(self, project_id: int, iid: int, sha: str, source: str = "feature", target: str = "main",
               state: str = "opened") -> None:
        with self.lock:
            self.projects[project_id].mrs[iid] = {"iid": iid, "sha": sha, "source_branch": source,
                                                  "target_branch": target, "state": state}

    def notes(self, project_id: int, kind: str, iid: int) -> list[dict]:
        return list(self.projects[project_id].notes.get((kind, iid), []))

    def add_note(self, project_id: int, kind: str, iid: int, body: str, author: dict | None = None) -> None:
        """A note by somebody else (a reviewer, unless `author` says otherwise)."""
        with self.lock:
            self._store_note(self.projects[project_id], kind, iid, body, author or REVIEWER)

    # --- plumbing ------------------------------------------------------------------------------------
    def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET" or request.method == "DELETE":
            return {k: (v if k.endswith("[]") else v[0]) for k, v in request.query.items()}
        kind = request.headers.get("content-type", "")
        if "application/json" in kind:
            data = request.json() or {}
            return {**{k: v[0] for k, v in request.query.items()}, **data}
        if "multipart/form-data" in kind:
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + kind.encode() + b"\r\n\r\n" + request.body)
            out: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True)
                out[name] = (filename, payload) if filename else payload.decode()
            return out
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        query = {k: v[0] for k, v in request.query.items()}
        return {**query, **{k: (v if k.endswith("[]") else v[0]) for k, v in form.items()}}

    def _validate(self, endpoint: str, request: Request, params: dict[str, Any]) -> None:
        allowed = PARAMS[(request.method, endpoint)]
        for name, value in params.items():
            key = name.removesuffix("[]")
            if key not in allowed:
                # GitLab's API framework drops undeclared parameters silently; note them for tests to inspect
                self.ignored.append((request.method, endpoint, name))
                continue
            kind = allowed[key][0]
            if kind == "int" and not (isinstance(value, int) or str(value).isdigit()):
                raise SpecViolation(f"{key} must be an integer, got {value!r}")
            if kind == "bool" and not isinstance(value, bool) and str(value).lower() not in ("true", "false"):
                raise SpecViolation(f"{key} must be a boolean, got {value!r}")
            if kind == "file" and not isinstance(value, tuple):
                raise SpecViolation(f"{key} must be sent as a multipart file")
            if key in ENUMS and value not in ENUMS[key]:
                raise SpecViolation(f"{key} must be one of {ENUMS[key]}, got {value!r}")
        for name, (_, required) in allowed.items():
            if required and name not in params and f"{name}[]" not in params:
                raise SpecViolation(f"required parameter {name!r} is missing")

    def _auth(self, request: Request, write: bool, scope: str | None = None) -> Response | None:
        token = request.headers.get("private-token") or request.headers.get("job-token") or ""
        if not token and request.headers.get("authorization", "").lower().startswith("bearer "):
            token = request.headers["authorization"][7:]
        if token not in self.tokens:
            return Response(401, {"message": "401 Unauthorized"})
        kind, scopes = self.tokens[token]
        if kind == "job":
            return Response(401, {"message": "401 Unauthorized"})  # job tokens reach only a few endpoints
        if write and "api" not in scopes and not (scope and scope in scopes):
            return Response(403, {"error": "insufficient_scope", "error_description":
                                  "The request requires higher privileges than provided by the access token.",
                                  "scope": "api"})
        if not write and not ({"api", "read_api"} & set(scopes)):
            return Response(403, {"error": "insufficient_scope", "scope": "api read_api"})
        return None

    def endpoint(self, method: str, pattern: str, name: str, handler: Callable[..., Any], write: bool,
                 project: bool = True, scope: str | None = None) -> None:
        def served(request: Request, **groups: str) -> Any:
            params = self._params(request)
            try:
                self._validate(name, request, params)
            except SpecViolation as exc:
                self.violations.append(f"{request.method} {request.path}: {exc}")
                return Response(400, {"message": f"400 Bad request - {exc}"})
            refused = self._auth(request, write, scope)
            if refused is not None:
                return refused
            if project:
                pid = groups.pop("pid")
                proj = self.projects.get(int(pid)) if pid.isdigit() else next(
                    (p for p in self.projects.values() if p.path == pid.replace("%2F", "/")), None)
                if proj is None:
                    return Response(404, {"message": "404 Project Not Found"})
                return handler(request, params, proj, **groups)
            return handler(request, params, **groups)

        self.route(method, API + pattern, served)

    def _paged(self, request: Request, items: list[Any]) -> Response:
        per_page = min(int(request.arg("per_page", "20")), 100)
        page = max(int(request.arg("page", "1")), 1)
        total_pages = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
                   "X-Total-Pages": str(total_pages), "X-Next-Page": str(page + 1) if page < total_pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        query = {k: v[0] for k, v in request.query.items()}
        links = []
        if page < total_pages:
            links.append(f'<{self.url}{request.path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        links.append(f'<{self.url}{request.path}?{urlencode({**query, "page": 1})}>; rel="first"')
        links.append(f'<{self.url}{request.path}?{urlencode({**query, "page": total_pages})}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return Response(200, chunk, headers)

    # --- routes --------------------------------------------------------------------------------------
    def _setup(self) -> None:
        e = self.endpoint
        p = r"/projects/(?P<pid>[^/]+)"
        e("GET", p + r"/repository/commits/(?P<sha>[^/]+)/merge_requests", "commit_mrs", self._commit_mrs, False)
        e("GET", p + r"/merge_requests/(?P<iid>\d+)/notes", "mr_notes", self._list_notes, False)
        e("POST", p + r"/merge_requests/(?P<iid>\d+)/notes", "mr_notes", self._create_note, True)
        e("PUT", p + r"/merge_requests/(?P<iid>\d+)/notes/(?P<note_id>\d+)", "mr_note", self._update_note, True)
        e("GET", p + r"/issues/(?P<iid>\d+)/notes", "issue_notes", self._list_notes, False)
        e("POST", p + r"/issues/(?P<iid>\d+)/notes", "issue_notes", self._create_note, True)
        e("PUT", p + r"/issues/(?P<iid>\d+)/notes/(?P<note_id>\d+)", "issue_note", self._update_note, True)
        e("GET", p + r"/repository/commits/(?P<sha>[^/]+)/comments", "commit_comments", self._list_commit_comments, False)
        e("POST", p + r"/repository/commits/(?P<sha>[^/]+)/comments", "commit_comments", self._create_commit_comment, True)
        e("POST", p + r"/uploads", "uploads", self._upload, True)
        e("POST", p + r"/statuses/(?P<sha>[^/]+)", "statuses", self._status, True)
        e("POST", p + r"/pipelines/(?P<pipeline_id>\d+)/retry", "pipeline_retry", self._retry, True)
        e("GET", p + r"/runners", "project_runners", self._project_runners, False)
        e("GET", r"/user", "user", self._user, False, project=False)
        e("POST", r"/user/runners", "user_runners", self._create_runner, True, project=False, scope="create_runner")
        e("GET", r"/runners/(?P<runner_id>\d+)", "runner", self._get_runner, False, project=False)
        e("DELETE", r"/runners/(?P<runner_id>\d+)", "runner", self._delete_runner, True, project=False, scope="manage_runner")
        self.route("GET", r"/-/project/(?P<pid>\d+)/uploads/(?P<secret>[0-9a-f]{32})/(?P<name>[^/]+)", self._serve_upload)
        self.route("GET", r"/(?P<path>.+)/uploads/(?P<secret>[0-9a-f]{32})/(?P<name>[^/]+)", self._serve_upload)

    def _user(self, request: Request, params: dict) -> dict:
        return {**self.users[self._token_of(request)], "web_url": f"{self.url}/{self.users[self._token_of(request)]['username']}"}

    def _kind(self, request: Request) -> str:
        return "mr" if "/merge_requests/" in request.path else "issue"

    def _note_json(self, note: dict) -> dict:
        return {k: v for k, v in note.items() if not k.startswith("_")}

    def _store_note(self, project: Project, kind: str, iid: int, body: str, author: dict) -> dict:
        note = {"id": next(self._ids), "type": None, "body": body, "author": author, "created_at": _now(),
                "updated_at": _now(), "system": False, "noteable_iid": iid,
                "noteable_type": "MergeRequest" if kind == "mr" else "Issue", "resolvable": False,
                "confidential": False, "internal": False}
        project.notes.setdefault((kind, iid), []).append(note)
        return note

    def _commit_mrs(self, request: Request, params: dict, project: Project, sha: str) -> Response:
        found = [{"id": mr["iid"] + 1000, "iid": mr["iid"], "project_id": project.id, "state": mr["state"],
                  "sha": mr["sha"], "source_branch": mr["source_branch"], "target_branch": mr["target_branch"],
                  "web_url": f"{self.url}/{project.path}/-/merge_requests/{mr['iid']}"}
                 for mr in project.mrs.values() if mr["sha"] == sha]
        return self._paged(request, found)

    def _list_notes(self, request: Request, params: dict, project: Project, iid: str) -> Response:
        notes = [self._note_json(n) for n in project.notes.get((self._kind(request), int(iid)), [])]
        key = params.get("order_by", "created_at")
        notes.sort(key=lambda n: (n[key], n["id"]), reverse=params.get("sort", "desc") == "desc")
        return self._paged(request, notes)

    def _create_note(self, request: Request, params: dict, project: Project, iid: str) -> Response:
        body = params["body"]
        if len(body) > 1_000_000:
            return Response(400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}})
        kind = self._kind(request)
        if kind == "mr" and int(iid) not in project.mrs:
            return Response(404, {"message": "404 Not found"})
        author = self.users[self._token_of(request)]
        return Response(201, self._note_json(self._store_note(project, kind, int(iid), body, author)))

    def _update_note(self, request: Request, params: dict, project: Project, iid: str, note_id: str) -> Any:
        for note in project.notes.get((self._kind(request), int(iid)), []):
            if note["id"] == int(note_id):
                if note["author"]["id"] != self.users[self._token_of(request)]["id"]:
                    return Response(403, {"message": "403 Forbidden"})  # only its author edits a note
                if "body" in params:
                    if len(params["body"]) > 1_000_000:
                        return Response(400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}})
                    note["body"], note["updated_at"] = params["body"], _now()
                return self._note_json(note)
        return Response(404, {"message": "404 Not found"})

    def _list_commit_comments(self, request: Request, params: dict, project: Project, sha: str) -> Response:
        return self._paged(request, list(project.commit_comments.get(sha, [])))

    def _create_commit_comment(self, request: Request, params: dict, project: Project, sha: str) -> Response:
        comment = {"note": params["note"], "author": USER, "created_at": _now(), "path": params.get("path"),
                   "line": params.get("line"), "line_type": params.get("line_type")}
        project.commit_comments.setdefault(sha, []).append(comment)
        return Response(201, comment)

    def _upload(self, request: Request, params: dict, project: Project) -> Response:
        filename, data = params["file"]
        secret = secrets.token_hex(16)
        url = f"/uploads/{secret}/{filename}"
        project.uploads[url] = data
        markdown = f"![{filename.rsplit('.', 1)[0]}]({url})"
        return Response(201, {"id": next(self._ids), "alt": filename.rsplit(".", 1)[0], "url": url,
                              "full_path": f"/-/project/{project.id}{url}", "markdown": markdown})

    def _serve_upload(self, request: Request, secret: str, name: str, path: str = "", pid: str = "") -> Response:
        """Served under the project's path (`url`) and, as newer GitLab does, under its id (`full_path`)."""
        project = next((p for p in self.projects.values() if p.path == path or str(p.id) == pid), None)
        data = project.uploads.get(f"/uploads/{secret}/{name}") if project else None
        if data is None:
            return Response(404, "Not Found")
        return Response(200, data, {"Content-Type": "image/png" if name.endswith(".png") else "application/octet-stream"})

    def _status(self, request: Request, params: dict, project: Project, sha: str) -> Response:
        status = {"id": next(self._ids), "sha": sha, "status": params["state"], "name": params.get("name", "default"),
                  "target_url": params.get("target_url"), "description": params.get("description"),
                  "created_at": _now(), "author": USER}
        project.statuses.append(status)
        return Response(201, status)

    def _retry(self, request: Request, params: dict, project: Project, pipeline_id: str) -> Response:
        project.retried.append(int(pipeline_id))
        return Response(201, {"id": int(pipeline_id), "status": "pending"})

    # runners
    def _runner_json(self, runner: Runner) -> dict:
        return {"id": runner.id, "description": runner.description, "active": True, "paused": False,
                "is_shared": False, "runner_type": "project_type", "online": runner.status == "online",
                "status": runner.status, "tag_list": runner.tags, "run_untagged": runner.run_untagged}

    def _create_runner(self, request: Request, params: dict) -> Response:
        tags = params.get("tag_list") or params.get("tag_list[]") or []
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t]
        run_untagged = str(params.get("run_untagged", "true")).lower() == "true"
        if not tags and not run_untagged:
            return Response(400, {"message": {"tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"]}})
        rid = next(self._ids)
        token = "glrt-" + hashlib.sha1(f"{rid}".encode()).hexdigest()[:20]
        pid = int(params["project_id"]) if params.get("project_id") is not None else None
        self.runners[rid] = Runner(rid, token, params.get("description", ""), list(tags), pid, run_untagged)
        return Response(201, {"id": rid, "token": token, "token_expires_at": None})

    def _get_runner(self, request: Request, params: dict, runner_id: str) -> Any:
        runner = self.runners.get(int(runner_id))
        if runner is not None and self.runners_come_online:
            runner.status = "online"
        return self._runner_json(runner) if runner else Response(404, {"message": "404 Runner Not Found"})

    def _delete_runner(self, request: Request, params: dict, runner_id: str) -> Response:
        if self.runners.pop(int(runner_id), None) is None:
            return Response(404, {"message": "404 Runner Not Found"})
        return Response(204)

    def _project_runners(self, request: Request, params: dict, project: Project) -> Response:
        wanted = params.get("tag_list") or ""
        tags = [t for t in (wanted if isinstance(wanted, list) else wanted.split(",")) if t]
        found = [self._runner_json(r) for r in self.runners.values()
                 if r.project_id == project.id and all(t in r.tags for t in tags)]
        return self._paged(request, found)
