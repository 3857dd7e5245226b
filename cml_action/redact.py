"""Secrets out of everything we post: the raw value and the encodings a hostile training would use to smuggle it.

GitHub's `::add-mask::` hides a value in the job log only; a PR comment, a check run or the job summary shows
whatever text we hand over. So every text that leaves through the forge (and the report file, which the fork
pattern hands to a trusted job) goes through a `Redactor` first. Base64 is matched at all three byte alignments,
so a secret inside a longer encoded blob (`AUTHORIZATION: basic base64("x-access-token:" + token)`, as
actions/checkout writes it into .git/config) is found too.
"""

from __future__ import annotations

import base64
import re
from typing import Iterable, Mapping
from urllib.parse import quote, quote_plus

REDACTED = "***"
MIN_LENGTH = 6  # shorter values ("true", "1") would redact ordinary words

# Variables whose values are secret wherever they appear: forge tokens, CI job credentials, cloud keys.
SECRET_NAMES = frozenset({
    "GITHUB_TOKEN", "GH_TOKEN", "CML_TOKEN", "GITLAB_TOKEN", "INPUT_TOKEN", "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "CI_JOB_TOKEN", "CI_JOB_JWT", "CI_JOB_JWT_V1", "CI_JOB_JWT_V2",
    "CI_REGISTRY_PASSWORD", "CI_DEPLOY_PASSWORD", "CI_DEPENDENCY_PROXY_PASSWORD", "CI_REPOSITORY_URL",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AZURE_CLIENT_SECRET", "ARM_CLIENT_SECRET",
    "GOOGLE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS_JSON", "GCP_SA_KEY", "DOCKER_PASSWORD",
})
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIALS)", re.I)
# values that look like a name matched by the pattern but are not secrets (paths, flags, ids)
_NOT_SECRET = re.compile(r"^(?:true|false|yes|no|0|1|none|null|/[\w./-]*|https?://[^@\s]*)$", re.I)
_BASIC_USERS = ("x-access-token:", "gitlab-ci-token:", "oauth2:", "x-oauth-basic:")


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values of the environment that are secret by name: the known ones, and any *TOKEN/*SECRET/*PASSWORD..."""
    found = []
    for name, value in env.items():
        if not value:
            continue
        if name in SECRET_NAMES or (_SECRET_NAME.search(name) and not _NOT_SECRET.match(value.strip())):
            found.append(value)
    found.extend(_key_file_secrets(env.get("GOOGLE_APPLICATION_CREDENTIALS", "")))
    return found


def _key_file_secrets(path: str) -> list[str]:
    """A service-account key file's private key: training can read the file, the report must not show it."""
    if not path:
        return []
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    return [str(data[k]) for k in ("private_key", "private_key_id", "refresh_token", "client_secret") if data.get(k)]


B64_TAIL = r"[A-Za-z0-9+/_-]{0,3}={0,2}"  # the last characters, which mix the secret's last bytes with what follows


def _base64_cores(secret: bytes) -> list[str]:
    """The part of base64(prefix + secret + suffix) that depends only on the secret, for each alignment."""
    cores = []
    for offset in range(3):
        total = offset + len(secret)
        encoded = base64.b64encode(b"\0" * offset + secret).decode()
        core = encoded[4 if offset else 0: (total // 3) * 4]
        if len(core) >= 8:
            cores.append(core)
            cores.append(core.replace("+", "-").replace("/", "_"))  # URL-safe alphabet
    return cores


def variants(secret: str) -> set[str]:
    """The secret as it may appear in text: raw, each line of a multi-line value, URL-encoded, hex, base64."""
    out: set[str] = set()
    pieces = [secret.strip()] + [line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_LENGTH]
    for piece in pieces:
        if len(piece) < MIN_LENGTH:
            continue
        raw = piece.encode()
        out.update({piece, quote(piece, safe=""), quote_plus(piece), raw.hex()})
    return {v for v in out if len(v) >= MIN_LENGTH}


def base64_variants(secret: str) -> set[str]:
    """The secret's base64 cores (each then matched with whatever tail the encoding gave it)."""
    pieces = [secret.strip()] + [line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_LENGTH]
    out: set[str] = set()
    for piece in pieces:
        if len(piece) < MIN_LENGTH:
            continue
        out.update(_base64_cores(piece.encode()))
        for user in _BASIC_USERS:  # the whole basic-auth header value, as git and actions/checkout write it
            out.add(base64.b64encode(user.encode() + piece.encode()).decode().rstrip("="))
    return out


class Redactor:
    """Replaces every known secret (and its encodings) with ***. Built once; matching is one compiled regex."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        new = {s for s in secrets if s and len(s.strip()) >= MIN_LENGTH} - self._secrets
        if not new:
            return
        self._secrets |= new
        literal: set[str] = set()
        encoded: set[str] = set()
        for secret in self._secrets:
            literal |= variants(secret)
            encoded |= base64_variants(secret)
        # one alternation, longest first, so a whole encoded header goes before the token inside it
        forms = [(v, re.escape(v) + B64_TAIL) for v in encoded] + [(v, re.escape(v)) for v in literal - encoded]
        self._pattern = re.compile("|".join(p for _, p in sorted(forms, key=lambda f: len(f[0]), reverse=True)))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        return self._pattern.sub(REDACTED, value) if self._pattern is not None and value else value

    def found_in(self, data: bytes) -> bool:
        """Whether raw bytes (an image about to be uploaded) carry a secret in any of its text encodings."""
        if self._pattern is None:
            return False
        return self._pattern.search(data.decode("latin-1")) is not None
