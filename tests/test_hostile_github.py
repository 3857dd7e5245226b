"""A hostile pull request against the GitHub stand-in: nothing stolen, nothing hijacked, nothing lost.

The PR's author controls the training command and its output and every workspace file; each test gives
them one of those and checks what the stand-in received (every request validated against GitHub's OpenAPI
description) and what the runner would do with our log.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from pathlib import Path

import pytest

from hostile_helpers import PNG, encodings, executed_commands, run_entry, script, small_repo
from repo_helpers import git
from test_github_e2e import OWNER_REPO, TOKEN, actions_env, issue_comments, outputs, pr_payload


@pytest.fixture()
def gh(github_standin):
    github_standin.add_repo(OWNER_REPO, default_branch="main", private=True)
    github_standin.add_token(TOKEN, permissions={"contents": "write", "pull_requests": "write", "issues": "write",
                                                 "checks": "write", "metadata": "read"})
    return github_standin


def pr_env(gh, repo: Path, tmp_path: Path, number: int, token: str = TOKEN) -> dict[str, str]:
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(OWNER_REPO, number, head_sha=head, head_ref="feature", base_ref="main")
    return actions_env(gh, repo, tmp_path, "pull_request", pr_payload(number, head), sha=head, token=token)


def everything_sent(gh) -> str:
    return "\n".join(r.body.decode("latin-1") for r in gh.requests)


def assets(gh) -> dict[str, bytes]:
    return gh.files_at(OWNER_REPO, "refs/heads/cml-assets")


# --- 1. only declared images leave --------------------------------------------------------------------------
def test_links_in_metric_text_logs_and_markdown_never_upload_git_config(gh, tmp_path: Path):
    repo = small_repo(tmp_path, {"acc": 0.9, "note": "![x](.git/config) <img src=\".git/config\">"}, token=TOKEN)
    config = (repo / ".git" / "config").read_bytes()
    (repo / "fake.png").write_text("[core]\n\tnot an image\n")
    (repo / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    (repo / "notes.md").write_text("Mine: ![p](plot.png) ![c](.git/config) ![o](cml-report/images/plot.png) ![s](logo.svg)\n")
    (repo / "cml-report" / "images").mkdir(parents=True)  # a previous run's output, still there
    (repo / "cml-report" / "images" / "plot.png").write_bytes(PNG)
    command = "echo '![x](.git/config)'; echo '<img src=\".git/config\">'; exit 3"
    env = pr_env(gh, repo, tmp_path, 21)
    out = run_entry(repo, ["--run", command, "--metrics", "metrics.json", "--plots", "plot.png fake.png logo.svg",
                           "--report", "notes.md", "--notebook-diff", "false"], env)
    assert out.returncode == 1, out.stderr
    sent = everything_sent(gh)
    assert base64.b64encode(config).decode()[:40] not in sent and "repositoryformatversion" not in sent
    uploaded = [path for path in assets(gh) if path != "README.md"]
    assert {p.rsplit("/", 1)[-1] for p in uploaded} == {"plot.png"}  # the same bytes from plots and from notes.md
    assert all(data == PNG for path, data in assets(gh).items() if path in uploaded)
    body = issue_comments(gh, 21)[0]["body"]
    assert "inside .git/" in body and "not an image" in body and "SVG is not published" in body
    assert "inside cml-action's own output folder" in body


def test_a_glob_never_picks_up_our_previous_output(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 22)
    for _ in range(2):
        out = run_entry(repo, ["report", "--metrics", "metrics.json", "--plots", "**/*.png", "--notebook-diff", "false"], env)
        assert out.returncode == 0, out.stderr
    body = issue_comments(gh, 22)[0]["body"]
    assert len(re.findall(r"!\[[^\]]*\]\(http", body)) == 1 and "cml-report" not in body


# --- 2. no secret in anything posted ---------------------------------------------------------------------------
THIEF = r'''
import base64, os, re, sys, urllib.parse
try:
    env = open(f"/proc/{os.getppid()}/environ", "rb").read().decode(errors="replace")
except OSError:
    env = ""
found = re.findall(r"INPUT_TOKEN=([^\x00]+)", env)
header = re.search(r"basic (\S+)", open(".git/config").read()).group(1)
token = base64.b64decode(header).decode().split(":", 1)[1]
print("from /proc:", found)
print("header:", header)
print("raw:", token, "b64:", base64.b64encode(token.encode()).decode(), "url:", urllib.parse.quote(token, safe=""))
print("hex:", token.encode().hex(), "shifted:", base64.b64encode(b"ab" + token.encode()).decode())
with open("metrics.json", "w") as fh:
    fh.write('{"acc": 0.5, "stolen": "%s", "stolen_b64": "%s"}' % (token, header))
sys.exit(1)
'''


def test_the_token_never_reaches_the_comment_summary_or_check_run_in_any_encoding(gh, tmp_path: Path):
    repo = small_repo(tmp_path, token=TOKEN)
    env = pr_env(gh, repo, tmp_path, 23)
    out = run_entry(repo, ["--run", script(repo, "thief.py", THIEF), "--metrics", "metrics.json", "--check", "true",
                           "--notebook-diff", "false"], env)
    assert out.returncode == 1, out.stderr
    body = issue_comments(gh, 23)[0]["body"]
    assert "header: ***\n" in body and "| stolen | — | *** | new |" in body and "***=" not in body
    check_id = outputs(tmp_path)["check-url"].rsplit("/", 1)[-1]
    posted = [everything_sent(gh), (tmp_path / "summary.md").read_text(), (repo / "cml-report" / "report.md").read_text(),
              json.dumps(gh.repos[OWNER_REPO].check_runs[int(check_id)])]
    for text in posted:
        for form in encodings(TOKEN):
            assert form not in text, form


def test_training_cannot_read_our_environment_through_proc(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 24)
    command = 'cat /proc/$PPID/environ > leaked.bin; echo "read: $?"; tr "\\0" "\\n" < /proc/$PPID/environ | grep -c TOKEN'
    out = run_entry(repo, ["--run", command, "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert TOKEN.encode() not in (repo / "leaked.bin").read_bytes()
    assert "Permission denied" in out.stdout and "read: 1" in out.stdout


# --- 3. training output cannot command the runner -------------------------------------------------------------
def test_workflow_commands_from_the_training_are_never_executed(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    read_only = "ghs_readOnly000000000000000000000000000"
    gh.add_token(read_only, {"contents": "read", "pull_requests": "read", "issues": "read", "metadata": "read"})
    env = pr_env(gh, repo, tmp_path, 25, token=read_only)
    command = ("echo '::error::pwned'; echo '::add-mask::acc'; echo '::stop-commands::quiet'; echo '::endgroup::'\n"
               "echo '::warning::second line of run'; echo '::set-output name=x::y'\n"
               "echo '::add-mask::tmp-credential-42'; echo 'using tmp-credential-42'; exit 1")
    out = run_entry(repo, ["--run", command, "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert out.returncode == 1, out.stderr
    log = out.stdout + "\n" + out.stderr
    assert "::" not in out.stderr  # every command of ours is on stdout, in order with the stop-commands fence
    done = executed_commands(out.stdout)
    theirs = ("::error::pwned", "::add-mask::acc", "::stop-commands::quiet", "::warning::second", "::set-output")
    assert not [c for c in done if c.startswith(theirs)]
    assert done.count("::endgroup::") == 1
    assert done[0].startswith("::add-mask::") and done[1] == "::group::Training: echo '::error::pwned'; echo " \
        "'::add-mask::acc'; echo '::stop-commands::quiet'; echo '::endgroup::' …"
    assert "::endgroup::" in done and any(c.startswith("::warning::report not posted") for c in done)  # ours still work
    assert "::warning::second line of run" in log  # shown in the log, as text
    # the training's own add-mask still hides its value: in the log as we print it, later lines, and the report
    assert "tmp-credential-42" not in out.stdout.split("::add-mask::tmp-credential-42")[0].replace(
        "echo '::add-mask::tmp-credential-42'; echo 'using tmp-credential-42'", "")
    assert "::add-mask::tmp-credential-42" in done
    assert "tmp-credential-42" not in (repo / "cml-report" / "report.md").read_text()


# --- 4. sticky by identity ----------------------------------------------------------------------------------------
def _marker(title: str) -> str:
    from cml_action.forges.base import sticky_marker

    return sticky_marker(title)


def test_a_comment_by_someone_else_carrying_our_marker_is_never_edited(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 26)
    planted = f"{_marker('CML report')}\nI am a reviewer; my comment must survive"
    gh.add_comment(OWNER_REPO, 26, planted, login="mallory")
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    comments = issue_comments(gh, 26)
    assert comments[0]["body"] == planted and len(comments) == 2 and "## CML report" in comments[1]["body"]
    assert comments[1]["user"]["login"] == "github-actions[bot]"


def test_a_report_carrying_another_titles_marker_cannot_take_over_its_comment(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 27)
    (repo / "notes.md").write_text(f"hello {_marker('Job A')}\n")
    base = ["report", "--metrics", "metrics.json", "--notebook-diff", "false"]
    assert run_entry(repo, [*base, "--title", "Job A"], env).returncode == 0
    assert run_entry(repo, [*base, "--title", "Job B", "--report", "notes.md"], env).returncode == 0
    out = run_entry(repo, [*base, "--title", "Job A"], env)
    assert out.returncode == 0, out.stderr
    bodies = [c["body"] for c in issue_comments(gh, 27)]
    assert len(bodies) == 2 and bodies[0].startswith(_marker("Job A")) and "## Job B" in bodies[1]


def test_a_personal_token_edits_only_its_own_users_comments(gh, tmp_path: Path):
    pat = "ghp_aliceTokenForTests000000000000000000"
    gh.add_token(pat, {"contents": "write", "pull_requests": "write", "issues": "write", "metadata": "read"}, login="alice")
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 28, token=pat)
    gh.add_comment(OWNER_REPO, 28, f"{_marker('CML report')}\nbob's words", login="bob")
    for _ in range(2):
        out = run_entry(repo, ["report", "--metrics", "metrics.json", "--notebook-diff", "false"], env)
        assert out.returncode == 0, out.stderr
    comments = issue_comments(gh, 28)
    assert [c["user"]["login"] for c in comments] == ["bob", "alice"] and comments[0]["body"].endswith("bob's words")
    assert "updated the report" in out.stdout


# --- 5. markdown and HTML injection ---------------------------------------------------------------------------
def test_metric_names_values_and_logs_render_as_text(gh, tmp_path: Path):
    metrics = {"acc </details> @octocat | x": "<img src=x onerror=alert(1)> **bold** [link](http://e)", "loss": 0.2}
    repo = small_repo(tmp_path, metrics)
    env = pr_env(gh, repo, tmp_path, 29)
    command = "echo '````'; echo '# Injected heading'; echo '</details>'; echo '@everyone look'; exit 1"
    out = run_entry(repo, ["--run", command, "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert out.returncode == 1
    body = issue_comments(gh, 29)[0]["body"]
    fence = re.search(r"^(`{5,})text$", body, re.M)
    assert fence, body  # longer than the four backticks of the log
    log = body[fence.end(): body.index(fence.group(1), fence.end())]
    assert "# Injected heading" in log and "</details>" in log
    from cml_action.report.images import _segments

    outside = "".join(text for text, is_code in _segments(body) if not is_code)  # what renders as markdown
    assert "<img" not in outside and "# Injected" not in outside
    assert outside.count("</details>") == outside.count("<details>") == 1
    assert not re.search(r"(?<![\w`])@(everyone|octocat)", body)  # a zero-width space follows every @
    assert "&lt;img src=x onerror=alert(1)&gt; \\*\\*bold\\*\\* \\[link\\](http://e)" in body


# --- 6. never lose the report ---------------------------------------------------------------------------------
def test_a_refused_token_is_a_warning_and_the_report_is_in_the_summary(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 30, token="ghs_revokedToken000000000000000000000")
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--plots", "plot.png", "--check", "true",
                           "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    assert "the token was refused" in out.stdout and "Traceback" not in out.stderr
    assert len(gh.requests) == 1 and out.stdout.count("::warning::") == 1  # refused once: no retries, one warning
    assert "## CML report" in (tmp_path / "summary.md").read_text()
    assert outputs(tmp_path)["report-path"] == "cml-report/report.md"


def test_the_summary_is_written_before_the_first_forge_call(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 31)
    seen: list[str] = []
    summary = tmp_path / "summary.md"
    gh.meanwhile("POST", r"/graphql$", lambda: seen.append(summary.read_text() if summary.exists() else ""))
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--plots", "plot.png", "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    assert "## CML report" in seen[0] and "| acc |" in seen[0]
    final = summary.read_text()
    assert final.count("## CML report") == 1 and "?raw=true" in final  # replaced, with the published image


def test_images_that_cannot_be_committed_become_a_note_and_the_report_is_posted(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 32)
    gh.inject("POST", r"/graphql$", 502, times=50)
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--plots", "plot.png", "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    body = issue_comments(gh, 32)[0]["body"]
    assert "image `images/plot.png` is not shown: the upload failed" in body and "| acc |" in body


def test_a_parallel_job_creating_the_assets_branch_first_is_no_failure(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 33)
    gh.meanwhile("POST", r"/git/refs$", lambda: gh.create_branch(OWNER_REPO, "cml-assets", {"README.md": b"theirs"}))
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--plots", "plot.png", "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    link = re.search(r"!\[plot.png\]\((\S+)\)", issue_comments(gh, 33)[0]["body"]).group(1)
    with urllib.request.urlopen(link) as resp:
        assert resp.read() == PNG
    assert assets(gh)["README.md"] == b"theirs"


def test_metrics_that_break_parsers_are_one_line_problems_and_the_report_is_posted(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    (repo / "big_int.json").write_text('{"n": 1' + "0" * 400 + "}")
    (repo / "deep.json").write_text('{"a":' * 5000 + "1" + "}" * 5000)
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    bomb += "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    (repo / "bomb.yaml").write_text(bomb)
    (repo / "quote.csv").write_text('name,value\nacc,"0.9\n')
    env = pr_env(gh, repo, tmp_path, 34)
    files = "metrics.json big_int.json deep.json bomb.yaml quote.csv"
    command = "python -c \"print('x' * 30_000_000)\"; exit 1"
    out = run_entry(repo, ["--run", command, "--metrics", files, "--notebook-diff", "false"], env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    body = issue_comments(gh, 34)[0]["body"]
    assert len(body) < 30_000 and "| acc |" in body
    for expected in ("big_int.json: a 401-digit integer", "deep.json: nested deeper than 64 levels",
                     "bomb.yaml: YAML aliases expand to more than", "quote.csv: cannot parse: unexpected end of data",
                     "(29,998,000 more characters)"):
        assert expected in body, expected


# --- 7. gates on broken numbers -------------------------------------------------------------------------------
def test_infinite_metrics_fail_their_gates(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    (repo / "metrics.json").write_text('{"acc": Infinity, "loss": -Infinity}')
    env = pr_env(gh, repo, tmp_path, 35)
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--gates", "acc >= 0.9\nloss <= 0.5",
                           "--notebook-diff", "false"], env)
    assert out.returncode == 1 and "quality gates failed" in out.stderr
    body = issue_comments(gh, 35)[0]["body"]
    assert "the value is Infinity, not a finite number" in body and "the value is -Infinity, not a finite number" in body


# --- 9. the smaller ones ---------------------------------------------------------------------------------------
def test_bad_paths_and_refs_are_refused_before_training(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 36)
    for args, expected in (((("--output-dir", "../elsewhere")), "--output-dir ../elsewhere: must be a folder inside"),
                           ((("--baseline", "no-such-ref")), "--baseline no-such-ref: no such branch"),
                           ((("--timeout", "soon")), "--timeout: expected a duration")):
        out = run_entry(repo, ["--run", "touch trained.flag", "--metrics", "metrics.json", *args], env)
        assert out.returncode == 2 and expected in out.stderr, out.stderr
        assert not (repo / "trained.flag").exists() and not (tmp_path / "elsewhere").exists()
    assert issue_comments(gh, 36) == []


def test_a_training_past_its_time_limit_is_stopped_and_reported(gh, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = pr_env(gh, repo, tmp_path, 37)
    out = run_entry(repo, ["--run", "echo started; sleep 60", "--timeout", "2s", "--metrics", "metrics.json",
                           "--notebook-diff", "false"], env, timeout=40)
    assert out.returncode == 1 and "training timed out" in out.stderr
    body = issue_comments(gh, 37)[0]["body"]
    assert "⏱️ **training timed out** (after 2s)" in body and "started" in body


def test_publish_survives_a_report_json_that_is_not_an_object(gh, tmp_path: Path):
    folder = tmp_path / "trusted" / "cml-report"
    folder.mkdir(parents=True)
    (folder / "report.md").write_text("## From the artifact\n\n![p](plot.png) ![c](../config.png)\n")
    (folder / "plot.png").write_bytes(PNG)
    (tmp_path / "trusted" / "config.png").write_bytes(PNG)
    (folder / "report.json").write_text("[1, 2, 3]")
    head = "b" * 40
    gh.add_pull(OWNER_REPO, 38, head_sha=head, head_ref="feature", base_ref="main")
    event = {"workflow_run": {"id": 5, "event": "pull_request", "head_sha": head, "head_branch": "feature",
                              "pull_requests": [{"number": 38}]}}
    env = actions_env(gh, folder.parent, tmp_path, "workflow_run", event, sha="c" * 40, ref_name="main")
    env.update({"INPUT_COMMAND": "publish", "INPUT_REPORT": "cml-report"})
    out = run_entry(folder.parent, [], env)
    assert out.returncode == 0, out.stderr
    body = issue_comments(gh, 38)[0]["body"]
    assert "## From the artifact" in body and "?raw=true" in body
    assert "only files inside the report folder are published" in body


def test_output_of_a_training_in_its_own_image_cannot_command_the_runner_either(gh, docker_engine, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = {**pr_env(gh, repo, tmp_path, 39), "DOCKER_HOST": docker_engine.url.replace("http://", "tcp://")}
    docker_engine.script.lines = ["::error::pwned from the image", f"stolen {TOKEN}", "::stop-commands::quiet"]
    out = run_entry(repo, ["--run", "python train.py", "--train-image", "python:3.11-slim", "--metrics", "metrics.json",
                           "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    done = executed_commands(out.stdout)
    assert not [c for c in done if "pwned" in c and not c.startswith("::group::") or c.startswith("::stop-commands::quiet")]
    assert "::error::pwned from the image" in out.stdout and f"stolen {TOKEN}" not in out.stdout
    assert "stolen ***" in out.stdout
