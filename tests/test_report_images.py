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


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_collect_images_takes_only_image_files_inside_the_report_folder(tmp_path: Path):
    (tmp_path / "cml-report" / "plots").mkdir(parents=True)
    (tmp_path / "cml-report" / "plots" / "a.png").write_bytes(PNG)
    (tmp_path / "cml-report" / "config.png").write_bytes(b"[core]\n\trepositoryformatversion = 0\n")
    (tmp_path / "cml-report" / "logo.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>")
    (tmp_path / "b.png").write_bytes(PNG)
    md = "![a](plots/a.png) ![b](../b.png) ![c](config.png) ![s](logo.svg) ![d](/etc/hostname)"
    images, refused = collect_images(md, tmp_path / "cml-report")
    assert {ref: img.rel for ref, img in images.items()} == {"plots/a.png": "plots/a.png"}
    assert "outside the workspace" in refused["../b.png"].reason
    assert "not an image" in refused["config.png"].reason and "SVG" in refused["logo.svg"].reason
    assert set(refused) == {"../b.png", "config.png", "logo.svg", "/etc/hostname"}


def test_collect_images_with_a_declared_list_takes_nothing_else(tmp_path: Path):
    (tmp_path / "plots").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "plots" / name).write_bytes(PNG)
    images, refused = collect_images("![a](plots/a.png) ![b](plots/b.png)", tmp_path, declared=["plots/a.png"])
    assert list(images) == ["plots/a.png"] and "not one of the report's declared images" in refused["plots/b.png"].reason


def test_references_inside_code_are_text():
    md = "![a](a.png)\n\n````text\n![x](.git/config)\n```\n<img src=\".git/config\">\n````\n`![y](y.png)` ![b](b.png)\n"
    assert local_refs(md) == ["a.png", "b.png"]
    out = replace_refs(md, lambda r: f"https://h/{r}", lambda r: "gone")
    assert "![x](.git/config)" in out and "`![y](y.png)`" in out and "![b](https://h/b.png)" in out


def test_huge_images_and_too_many_images_are_refused(tmp_path: Path):
    from cml_action import publish

    (tmp_path / "big.png").write_bytes(PNG + b"\0" * (publish.MAX_IMAGE_BYTES + 1))
    for i in range(publish.MAX_IMAGES + 1):
        (tmp_path / f"{i}.png").write_bytes(PNG)
    md = "![b](big.png) " + " ".join(f"![{i}]({i}.png)" for i in range(publish.MAX_IMAGES + 1))
    images, refused = collect_images(md, tmp_path)
    assert len(images) == publish.MAX_IMAGES and "MiB published per image" in refused["big.png"].reason
    assert f"already has {publish.MAX_IMAGES} images" in refused[f"{publish.MAX_IMAGES}.png"].reason
