#!/usr/bin/env python3
"""Render the example project's report to docs/sample-report.png for the README gallery.

Runs the example in local mode in a scratch git repository (baseline on main, a changed parameter on
a branch), converts report.md to HTML with GitHub-like styling, and screenshots it with headless
Chromium. Needs `pip install markdown` and Debian's `chromium`; not part of the test run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from repo_helpers import example_repo, run_cli  # noqa: E402

CSS = """
body { font-family: -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; font-size: 14px; color: #1f2328;
       max-width: 860px; margin: 24px auto; padding: 16px 24px; border: 1px solid #d0d7de; border-radius: 6px; }
h2 { border-bottom: 1px solid #d8dee4; padding-bottom: .3em; } h3 { margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #d0d7de; padding: 4px 12px; }
tr:nth-child(2n) { background: #f6f8fa; } code { background: #eff1f3; padding: 1px 4px; border-radius: 4px; }
img { max-width: 420px; } sub { color: #59636e; }
"""


def main() -> int:
    import markdown

    with tempfile.TemporaryDirectory() as tmp:
        repo = example_repo(Path(tmp))
        plots = "confusion_matrix.png importance.csv confusion_matrix.csv"
        out = run_cli(repo, "--run", "python train.py", "--metrics", "metrics.json", "--params", "params.yaml",
                      "--plots", plots, "--title", "Model report", "--gates", "accuracy >= 0.9\nroc_auc >= baseline - 0.01",
                      "--notebook-diff", "false")
        if out.returncode not in (0, 1):
            print(out.stderr, file=sys.stderr)
            return 1
        report_dir = repo / "cml-report"
        html = markdown.markdown((report_dir / "report.md").read_text(), extensions=["tables", "fenced_code", "md_in_html"])
        page = report_dir / "report.html"
        page.write_text(f"<!doctype html><meta charset='utf-8'><style>{CSS}</style><body>{html}</body>")
        target = ROOT / "docs" / "sample-report.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp}/chrome", "--hide-scrollbars", "--window-size=920,1800",
                        f"--screenshot={target}", page.as_uri()], check=True, capture_output=True, timeout=120)
        shutil.copyfile(report_dir / "report.md", ROOT / "docs" / "sample-report.md")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
