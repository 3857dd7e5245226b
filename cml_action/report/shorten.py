"""Fit a report into a forge's comment limit without losing its head.

Order of sacrifice: folded `<details>` bodies first (they were folded because they matter least),
then the longest tables lose rows, and only then is the text cut. Each step leaves a note saying
where the full report is (the job summary and the report file keep everything).
"""

from __future__ import annotations

import re

_DETAILS = re.compile(r"(<details[^>]*>\s*<summary>.*?</summary>)(.*?)(</details>)", re.S)


def _where(full_report_url: str) -> str:
    return f"[the full report]({full_report_url})" if full_report_url else "the job summary and the report file"


def shorten(text: str, limit: int, full_report_url: str = "") -> tuple[str, bool]:
    """Return (text that fits in `limit` characters, whether anything was removed)."""
    if len(text) <= limit:
        return text, False
    where = _where(full_report_url)
    # 1. fold details bodies, last first
    matches = list(_DETAILS.finditer(text))
    for match in reversed(matches):
        folded = f"{match.group(1)}\n\n_Removed to fit the comment size limit: see {where}._\n\n{match.group(3)}"
        text = text[: match.start()] + folded + text[match.end():]
        if len(text) <= limit:
            return text, True
    # 2. cut table rows, longest table first, down to 10 rows each
    while len(text) > limit:
        tables = _tables(text)
        if not tables:
            break
        start, end, rows = max(tables, key=lambda t: t[1] - t[0])
        if len(rows) <= 12:  # header + separator + 10 rows: stop cutting tables
            break
        keep = max(10, (len(rows) - 2) // 2)
        dropped = len(rows) - 2 - keep
        block = "\n".join(rows[: 2 + keep]) + f"\n\n_{dropped} more rows removed to fit the comment size limit: see {where}._"
        text = text[:start] + block + text[end:]
    if len(text) <= limit:
        return text, True
    # 3. cut the text, closing an open code fence
    note = f"\n\n_…cut to fit the comment size limit: see {where}._\n"
    budget = max(0, limit - len(note) - 8)
    cut = text[:budget]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    fence = _open_fence(cut)
    if fence:
        cut += "\n" + fence
    if cut.count("<details") > cut.count("</details>"):
        cut += "\n</details>"
    return (cut + note)[:limit], True


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _open_fence(text: str) -> str:
    """The fence of a code block left open at the end of `text` ('' when none): log fences may be long."""
    fence = ""
    for line in text.splitlines():
        match = _FENCE.match(line)
        if not match:
            continue
        mark = match.group(1)
        if not fence:
            fence = mark
        elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark):].strip():
            fence = ""
    return fence


def _tables(text: str) -> list[tuple[int, int, list[str]]]:
    """(start offset, end offset, lines) of each markdown table."""
    found: list[tuple[int, int, list[str]]] = []
    offset = 0
    current: list[str] = []
    start = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("|"):
            if not current:
                start = offset
            current.append(line.rstrip("\n"))
        elif current:
            found.append((start, offset - 1 if text[offset - 1] == "\n" else offset, current))
            current = []
        offset += len(line)
    if current:
        found.append((start, len(text), current))
    return found
