"""Render the VM's bootstrap script: pinned runner package, one job, watchdogs that power the machine off.

The script is the same for every cloud; what differs (how the one-job secret reaches the VM, what
"power off for good" means) comes from the provider as shell snippets. The script is public by
construction (user-data is readable by anyone with describe rights), so it never holds a secret.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib import resources

# actions/runner release v2.337.0 (2026-08-26): SHA-256 of the published Linux packages.
GITHUB_RUNNER_VERSION = "2.337.0"
GITHUB_RUNNER_SHA256 = {
    "x64": "70920811a4f8ad4328818682bca5c6469c1c942fab52448868071d0063816613",
    "arm64": "9b1dc70626422526e3c94767cf024896beb15da5342a3f4819bf2feac13e0393",
}
# gitlab-runner: the binary and the vendor's checksum list, both from GitLab's release bucket, over TLS.
GITLAB_RUNNER_VERSION = "18.5.0"
GITLAB_RUNNER_BASE = f"https://gitlab-runner-downloads.s3.amazonaws.com/v{GITLAB_RUNNER_VERSION}"


@dataclass(frozen=True)
class Package:
    url: str
    sha256: str  # hex digest, or an https URL of the vendor's checksum list


def runner_package(forge: str, arch: str = "x64") -> Package:
    if forge == "github":
        name = f"actions-runner-linux-{arch}-{GITHUB_RUNNER_VERSION}.tar.gz"
        return Package(f"https://github.com/actions/runner/releases/download/v{GITHUB_RUNNER_VERSION}/{name}",
                       GITHUB_RUNNER_SHA256[arch])
    binary = "gitlab-runner-linux-amd64" if arch == "x64" else "gitlab-runner-linux-arm64"
    return Package(f"{GITLAB_RUNNER_BASE}/binaries/{binary}", f"{GITLAB_RUNNER_BASE}/release.sha256")


def render(*, forge: str, name: str, idle_timeout_s: int, max_lifetime_s: int, secret_snippet: str,
           poweroff_snippet: str, forge_url: str = "", package: Package | None = None,
           runner_user: str = "cmlrunner") -> str:
    """The snippets become function bodies verbatim, at column 0: re-indenting them would break their heredocs
    (a closing delimiter must stand alone on its line) and the Python those heredocs carry."""
    if forge not in ("github", "gitlab"):
        raise ValueError(f"unknown forge {forge!r}")
    package = package or runner_package(forge)
    values = {
        "RUNNER_NAME": name, "FORGE": forge, "FORGE_URL": forge_url, "IDLE_TIMEOUT": str(int(idle_timeout_s)),
        "MAX_LIFETIME": str(int(max_lifetime_s)), "PACKAGE_URL": package.url, "PACKAGE_SHA256": package.sha256,
        "RUNNER_USER": runner_user,
    }
    pieces = {key: shlex.quote(value) for key, value in values.items()}
    pieces["SECRET"] = _body(secret_snippet, "secret")
    pieces["POWEROFF"] = _body(poweroff_snippet, "power-off")
    text = resources.files("cml_action.runners").joinpath("startup.sh.tmpl").read_text(encoding="utf-8")
    # one pass: a value that happens to contain a placeholder is never substituted again
    return _PLACEHOLDER.sub(lambda m: pieces[m.group(1)], text)


_PLACEHOLDER = re.compile(r"@@([A-Z0-9_]+)@@")


def _body(snippet: str, what: str) -> str:
    body = snippet.strip("\n")
    if not body.strip():
        return ":"  # a function needs one command
    if _PLACEHOLDER.search(body):
        raise ValueError(f"the {what} snippet contains a template placeholder")
    return body
