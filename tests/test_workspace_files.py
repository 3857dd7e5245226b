import os
from pathlib import Path

from cml_action.workspace_files import Refused, check, expand


def test_only_regular_files_inside_the_workspace(tmp_path: Path):
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "ok.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("s")
    (ws / "out.png").symlink_to(tmp_path / "secret.txt")
    (ws / "in.png").symlink_to(ws / "sub" / "ok.png")
    os.mkfifo(ws / "pipe.png")
    assert check(ws, "sub/ok.png") == (ws / "sub" / "ok.png").resolve()
    assert check(ws, "in.png") == (ws / "sub" / "ok.png").resolve()
    reasons = {p: check(ws, p) for p in ["/etc/passwd", "../secret.txt", "sub/../../secret.txt", "out.png",
                                         "pipe.png", "missing.png", "/proc/self/environ", "sub"]}
    assert all(isinstance(r, Refused) for r in reasons.values()), reasons
    assert "absolute" in reasons["/proc/self/environ"].reason
    assert "symlink" in reasons["out.png"].reason
    assert "outside" in reasons["../secret.txt"].reason
    assert "not a regular file" in reasons["pipe.png"].reason


def test_expand_globs_keeps_order_and_reports_unmatched(tmp_path: Path):
    for name in ["b.json", "a.json", "x/c.json"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}")
    found, unmatched = expand(tmp_path, ["b.json", "*.json", "**/c.json", "*.yaml"])
    assert found == ["b.json", "a.json", "x/c.json"]
    assert unmatched == ["*.yaml"]
