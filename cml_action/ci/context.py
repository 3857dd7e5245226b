"""CI context from the standard variables of GitHub Actions and GitLab CI, or a plain shell.

Nothing is hard-coded to github.com or gitlab.com: the API and server URLs always come from the
environment, so GitHub Enterprise Server and self-managed GitLab work unchanged.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal, Mapping, TextIO

from cml_action.errors import UserError
from cml_action.redact import MIN_LENGTH, Redactor, secret_values

Kind = Literal["github", "gitlab", "local"]


@dataclass(frozen=True)
class CIContext:
    kind: Kind
    workspace: Path
    api_url: str = ""
    server_url: str = ""
    graphql_url: str = ""
    repository: str = ""  # "owner/name" (GitHub) or the project path (GitLab)
    project_id: str = ""  # GitLab's numeric project id
    sha: str = ""  # the commit the report describes: the PR head, never GitHub's merge commit
    ref_name: str = ""  # the branch being built
    event_name: str = ""
    pr_number: int | None = None  # pull request number or merge request IID
    base_ref: str = ""  # PR target branch
    before_sha: str = ""  # previous tip on a push
    default_branch: str = ""
    run_id: str = ""
    run_url: str = ""
    summary_path: Path | None = None  # GITHUB_STEP_SUMMARY
    output_path: Path | None = None  # GITHUB_OUTPUT
    # workflow_run (the fork pattern): "owner:branch" of the head of the run that made the report, from the trusted
    # event, to find a fork's pull request, which GitHub leaves out of `workflow_run.pull_requests`
    head_label: str = ""
    event: dict = field(default_factory=dict, repr=False, compare=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)  # every secret we know of

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def repo_name(self) -> str:
        return self.repository.split("/", 1)[-1]

    # --- log helpers: each CI folds and warns in its own syntax -----------------------------------
    @contextmanager
    def group(self, title: str, out: TextIO | None = None) -> Iterator[None]:
        stream = out or sys.stdout
        title = one_line(self.redactor.text(title))
        if self.kind == "github":
            print(f"::group::{_escape_data(title)}", file=stream, flush=True)
        elif self.kind == "gitlab":
            name = "cml_" + uuid.uuid4().hex[:8]
            print(f"\x1b[0Ksection_start:{_now()}:{name}[collapsed=true]\r\x1b[0K{neutralize_sections(title)}",
                  file=stream, flush=True)
        else:
            print(f"--- {title}", file=stream, flush=True)
        try:
            yield
        finally:
            if self.kind == "github":
                print("::endgroup::", file=stream, flush=True)
            elif self.kind == "gitlab":
                print(f"\x1b[0Ksection_end:{_now()}:{name}\r\x1b[0K", file=stream, flush=True)

    @contextmanager
    def untrusted_output(self, out: TextIO | None = None) -> Iterator[Callable[[str], str]]:
        """Lines printed inside are someone else's (the training): they must not command the runner.

        GitHub: `::stop-commands::<random>` until `::<random>::` turns every workflow command off (`::error::`,
        `::add-mask::`, another `::stop-commands::`), and the random resume token cannot be guessed by the
        training. GitLab: collapsible-section markers are defused line by line. Yields the per-line filter,
        which also redacts known secrets."""
        stream = out or sys.stdout
        resume = secrets.token_hex(16) if self.kind == "github" else ""
        if resume:
            print(f"::stop-commands::{resume}", file=stream, flush=True)
        masked: list[str] = []

        def clean(text: str) -> str:
            for line in text.splitlines() if "::add-mask::" in text else ():
                if line.startswith("::add-mask::") and len(line.strip()) - 12 >= MIN_LENGTH:
                    masked.append(line[len("::add-mask::"):].strip())  # the training's own secret: hidden too
                    self.redactor.add(masked[-1])
            text = self.redactor.text(text)
            return neutralize_sections(text) if self.kind == "gitlab" else text

        try:
            yield clean
        finally:
            if resume:
                print(f"\n::{resume}::", file=stream, flush=True)
                for value in masked:  # add-mask only hides: honoured once commands are back on
                    print(f"::add-mask::{_escape_data(value)}", file=stream, flush=True)

    def warning(self, message: str) -> None:
        """GitHub: an annotation, on stdout like every workflow command of ours: the runner reads stdout and stderr
        separately, and only one stream keeps our commands in order with the `::stop-commands::` that fenced
        the training's output."""
        one = one_line(self.redactor.text(message))
        if self.kind == "github":
            print(f"::warning::{_escape_data(one)}", flush=True)
        else:
            print(f"cml-action: warning: {one}", file=sys.stderr, flush=True)

    def mask(self, secret: str) -> None:
        """Ask the runner to hide a secret from logs (each line: the runner masks line by line), and remember it
        for redacting what we post. GitLab masks its own variables."""
        if not secret:
            return
        self.redactor.add(secret)
        if self.kind == "github":
            for line in secret.splitlines():
                if line.strip():
                    print(f"::add-mask::{_escape_data(line.strip())}", flush=True)

    def set_outputs(self, values: Mapping[str, str]) -> None:
        """GitHub: $GITHUB_OUTPUT. GitLab: `cml.env` in the workspace, a dotenv report (`artifacts: reports:
        dotenv: cml.env`) that hands CML_RUNNER_LABEL etc. to later jobs."""
        if self.kind == "gitlab":
            lines = [f"CML_{key.upper().replace('-', '_')}={' '.join(str(value).split())}" for key, value in values.items()]
            with open(self.workspace / "cml.env", "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            return
        if self.output_path is None:
            return
        with open(self.output_path, "a", encoding="utf-8") as fh:
            for key, value in values.items():
                delimiter = f"cml_{uuid.uuid4().hex}"
                fh.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


class Filtered:
    """A text stream that passes everything written to it through `clean` (for code that prints untrusted lines)."""

    def __init__(self, stream: TextIO, clean: Callable[[str], str]) -> None:
        self._stream, self._clean = stream, clean

    def write(self, text: str) -> int:
        return self._stream.write(self._clean(text))

    def flush(self) -> None:
        self._stream.flush()


def one_line(text: str) -> str:
    """A title or warning on one log line: newlines would start a new (and possibly commanding) line."""
    return " ".join(text.split())


def _escape_data(text: str) -> str:
    """The runner's escaping of a workflow command's message (so `%0A` in user text stays text)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


_SECTION = re.compile(r"section_(start|end):")


def neutralize_sections(line: str) -> str:
    """GitLab folds the job log at `section_start:<time>:<name>` / `section_end:` markers; a zero-width space
    keeps the text readable and the marker inert, so training output cannot open or close our sections."""
    return _SECTION.sub(lambda m: f"section_\u200b{m.group(1)}:", line)


def _now() -> int:
    import time

    return int(time.time())


def detect(env: Mapping[str, str], workspace: Path) -> CIContext:
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_REPOSITORY"):
        ctx = _github(env, workspace)
    elif env.get("GITLAB_CI") == "true" or env.get("CI_PROJECT_ID"):
        ctx = _gitlab(env, workspace)
    else:
        ctx = CIContext(kind="local", workspace=workspace)
    ctx.redactor.add(*secret_values(env))  # redacted from what we post; only the token is masked in the log
    return ctx


def _load_event(path: str) -> dict:
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the event payload GITHUB_EVENT_PATH={path}: {exc}") from None


def _github(env: Mapping[str, str], workspace: Path) -> CIContext:
    event = _load_event(env.get("GITHUB_EVENT_PATH", ""))
    api_url = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    server_url = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    graphql_url = env.get("GITHUB_GRAPHQL_URL", "")
    if not graphql_url:
        graphql_url = api_url[: -len("/v3")] + "/graphql" if api_url.endswith("/api/v3") else api_url + "/graphql"
    pr = event.get("pull_request") or {}
    sha = env.get("GITHUB_SHA", "")
    if pr.get("head", {}).get("sha"):
        sha = pr["head"]["sha"]  # GITHUB_SHA is the throw-away merge commit on pull_request events
    ref_name = env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", "")
    run = event.get("workflow_run") or {}
    head_label = ""
    if run.get("head_sha"):
        # the trusted half of the fork pattern: describe the run that made the report, not this one
        sha = run["head_sha"]
        ref_name = run.get("head_branch") or ref_name
        pr = {"number": (run.get("pull_requests") or [{}])[0].get("number")}
        head_label = _head_label(run)
    repository = env.get("GITHUB_REPOSITORY", "")
    run_id = env.get("GITHUB_RUN_ID", "")
    run_url = f"{server_url}/{repository}/actions/runs/{run_id}" if run_id and repository else ""
    before = event.get("before", "")
    if before and set(before) == {"0"}:
        before = ""  # a new branch has no previous tip
    return CIContext(
        kind="github",
        workspace=workspace,
        api_url=api_url,
        server_url=server_url,
        graphql_url=graphql_url,
        repository=repository,
        sha=sha,
        ref_name=ref_name,
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        pr_number=pr.get("number") or None,
        base_ref=env.get("GITHUB_BASE_REF") or pr.get("base", {}).get("ref", ""),
        before_sha=before,
        default_branch=(event.get("repository") or {}).get("default_branch", ""),
        run_id=run_id,
        run_url=run_url,
        summary_path=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
        output_path=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
        head_label=head_label,
        event=event,
    )


def _head_label(run: dict) -> str:
    """`owner:branch` of a workflow_run's head, or "" when the event does not say (no guessing from the artifact)."""
    owner = ((run.get("head_repository") or {}).get("owner") or {}).get("login", "")
    branch = run.get("head_branch") or ""
    if not isinstance(owner, str) or not isinstance(branch, str) or not owner or not branch:
        return ""
    return f"{owner}:{branch}"


def _gitlab(env: Mapping[str, str], workspace: Path) -> CIContext:
    iid = env.get("CI_MERGE_REQUEST_IID", "")
    api_url = env.get("CI_API_V4_URL", "").rstrip("/")
    return CIContext(
        kind="gitlab",
        workspace=workspace,
        api_url=api_url,
        server_url=(env.get("CI_SERVER_URL") or api_url.removesuffix("/api/v4")).rstrip("/"),
        repository=env.get("CI_PROJECT_PATH", ""),
        project_id=env.get("CI_PROJECT_ID", ""),
        # merged-results pipelines build a temporary merge commit; the report describes the MR's own head
        sha=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or env.get("CI_COMMIT_SHA", ""),
        ref_name=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or env.get("CI_COMMIT_REF_NAME", ""),
        event_name=env.get("CI_PIPELINE_SOURCE", ""),
        pr_number=int(iid) if iid.isdigit() else None,
        base_ref=env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""),
        before_sha="" if set(env.get("CI_COMMIT_BEFORE_SHA", "0")) == {"0"} else env.get("CI_COMMIT_BEFORE_SHA", ""),
        default_branch=env.get("CI_DEFAULT_BRANCH", ""),
        run_id=env.get("CI_PIPELINE_ID", ""),
        run_url=env.get("CI_JOB_URL", ""),
    )
