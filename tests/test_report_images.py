from pathlib import Path

from cml_action.publish import collect_images
from cml_action.report.images import local_refs, replace_refs

MD = """![a](plots/a.png) ![remote](https://x/y.png) <img src="b.png" width="50"> ![d](data:image/png;base64,xx)
![esc](../../etc/passwd) ![abs](/proc/self/environ)"""


def test_local_refs_skip_remote_and_data_uris():
    assert local_refs(MD) == ["plots/a.png", "../../etc/passwd", "/proc/self/environ", "b.png"]


def test_replace_refs_rewrites_markdown_and_html_and_drops_with_note():
    out = replace_refs(MD, lambda r: None if "etc" in r or "proc" in r else f"https://h/{r}", lambda r: f"[gone {r}]")
    assert "![a](https://h/plots/a.png)" in out
    assert '<img src="https://h/b.png" width="50">' in out
    assert "[gone ../../etc/passwd]" in out and "[gone /proc/self/environ]" in out
    assert "https://x/y.png" in out


def test_collect_images_resolves_relative_to_report_folder(tmp_path: Path):
    (tmp_path / "cml-report" / "plots").mkdir(parents=True)
    (tmp_path / "cml-report" / "plots" / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"y")
    md = "![a](plots/a.png) ![b](../b.png) ![c](../../outside.png) ![d](/etc/hostname)"
    images, refused = collect_images(md, tmp_path / "cml-report", tmp_path)
    assert {ref: img.rel for ref, img in images.items()} == {"plots/a.png": "cml-report/plots/a.png", "../b.png": "b.png"}
    assert set(refused) == {"../../outside.png", "/etc/hostname"}
