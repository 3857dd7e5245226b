"""User text into markdown that renders as the text, and nothing else.

Metric names and values, parameter values, file names and log lines come from a pull request's author. In a
comment they must not become HTML (`</details>`, `<img>`), links or images, headings, table columns, a
closed code fence, a ping of somebody (`@org/team`), or one of our hidden markers.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
_MENTION = re.compile(r"(?<![\w.`/@\\])@(?=[A-Za-z0-9])")
_MARKER = re.compile(r"cml-action:(report|post):", re.I)
_INLINE = re.compile(r"([\\`*\[\]|~<>])")
_PROSE = re.compile(r"([\[\]|<>])")
_BACKTICKS = re.compile(r"`+")


def defuse_mentions(text: str) -> str:
    """`@name` never pings: a zero-width space after the `@` (invisible, and GitHub/GitLab then see no mention)."""
    return _MENTION.sub("@" + ZWSP, text)


def defuse_markers(text: str) -> str:
    """Our hidden comment markers can only be written by us: any copy in user text is broken up."""
    return _MARKER.sub(lambda m: f"cml-action{ZWSP}:{m.group(1)}:", text)


def _entities(text: str) -> str:
    return text.replace("&", "&amp;")


def inline(text: object) -> str:
    """A table cell, headline or caption: one line, every markdown/HTML special character escaped."""
    flat = " ".join(str(text).split())
    escaped = _INLINE.sub(lambda m: {"<": "&lt;", ">": "&gt;"}.get(m.group(1), "\\" + m.group(1)), _entities(flat))
    return defuse_markers(defuse_mentions(escaped))


def prose(text: str) -> str:
    """A warning line that may hold our own `code` spans: HTML, links, images and table pipes are escaped."""
    flat = " ".join(text.split())
    escaped = _PROSE.sub(lambda m: {"<": "&lt;", ">": "&gt;"}.get(m.group(1), "\\" + m.group(1)), _entities(flat))
    return defuse_markers(defuse_mentions(escaped))


def code(text: object) -> str:
    """An inline code span that holds any text: the fence is one backtick longer than any run inside."""
    flat = " ".join(str(text).split())
    longest = max((len(m.group(0)) for m in _BACKTICKS.finditer(flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat else ""
    return defuse_markers(f"{fence}{pad}{flat}{pad}{fence}")


def code_block(text: str, info: str = "text") -> str:
    """A fenced block no line of `text` can close: the fence is longer than any backtick run in it."""
    longest = max((len(m.group(0)) for m in _BACKTICKS.finditer(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return defuse_markers(defuse_mentions(f"{fence}{info}\n{text}\n{fence}"))
