"""Secrets out of posted text in the encodings a training would use; multi-line secrets masked line by line."""

from __future__ import annotations

import base64
import io
from contextlib import redirect_stdout
from pathlib import Path
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from cml_action.ci.context import CIContext
from cml_action.redact import Redactor, secret_values

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"


def test_every_common_encoding_of_the_token_is_redacted():
    red = Redactor([TOKEN])
    header = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    text = (f"raw {TOKEN} | header AUTHORIZATION: basic {header} | b64 {base64.b64encode(TOKEN.encode()).decode()} | "
            f"url {quote('a/' + TOKEN + '?', safe='')} | hex {TOKEN.encode().hex()} | "
            f"urlsafe {base64.urlsafe_b64encode(b'?>' + TOKEN.encode()).decode()}")
    out = red.text(text)
    assert TOKEN not in out and header not in out and "ghs_" not in out
    assert out.startswith("raw *** | header AUTHORIZATION: basic *** | b64 *** | url a%2F***%3F | hex *** |")


@settings(max_examples=60, deadline=None)
@given(prefix=st.binary(max_size=12), suffix=st.binary(max_size=12))
def test_the_token_is_found_inside_any_longer_base64_blob(prefix: bytes, suffix: bytes):
    blob = base64.b64encode(prefix + TOKEN.encode() + suffix).decode()
    out = Redactor([TOKEN]).text(blob)
    assert "***" in out and len(out) < len(blob) - len(TOKEN)


def test_secret_values_come_from_known_names_and_secret_like_names_only():
    env = {"GITHUB_TOKEN": "ghs_abcdef", "CI_JOB_TOKEN": "glcbt-123456", "MY_API_KEY": "k-999999",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "TOKEN_URL": "https://example.com/token", "USE_TOKEN": "true",
           "HOME": "/root", "DATA_DIR": "/data/secret-set"}
    assert sorted(secret_values(env)) == sorted(["ghs_abcdef", "glcbt-123456", "k-999999", "wJalrXUtnFEMI"])


def test_a_service_account_key_files_private_key_is_a_secret(tmp_path: Path):
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n", '
                   '"private_key_id": "0123456789abcdef"}')
    red = Redactor(secret_values({"GOOGLE_APPLICATION_CREDENTIALS": str(key)}))
    assert red.text("id 0123456789abcdef line MIIEvQIBADANBg") == "id *** line ***"


def test_a_multi_line_secret_is_masked_and_redacted_on_every_line(tmp_path: Path):
    ctx = CIContext(kind="github", workspace=tmp_path)
    secret = "-----BEGIN KEY-----\nAAAAline2secret\nBBBBline3secret\n-----END KEY-----"
    with redirect_stdout(io.StringIO()) as out:
        ctx.mask(secret)
    masks = [line for line in out.getvalue().splitlines() if line.startswith("::add-mask::")]
    assert masks == [f"::add-mask::{line}" for line in secret.splitlines()]
    assert ctx.redactor.text("log: BBBBline3secret") == "log: ***"


def test_images_carrying_a_secret_are_detected(tmp_path: Path):
    red = Redactor([TOKEN])
    png = b"\x89PNG\r\n\x1a\n" + b"tEXtComment\x00" + base64.b64encode(TOKEN.encode()) + b"\x00IEND"
    assert red.found_in(png) and not red.found_in(b"\x89PNG\r\n\x1a\nclean")
