"""User text in a report renders as that text: no HTML, links, fences closed early, pings or markers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cml_action.report.escape import ZWSP, code, code_block, defuse_markers, defuse_mentions, inline
from cml_action.report.images import _segments


def test_inline_escapes_html_links_pipes_and_emphasis():
    assert inline("<b>x</b> | [a](b) *c* `d`") == "&lt;b&gt;x&lt;/b&gt; \\| \\[a\\](b) \\*c\\* \\`d\\`"
    assert inline("a\nb") == "a b"


def test_mentions_never_ping_and_emails_stay_emails():
    assert defuse_mentions("@octocat, @org/team and a@b.com") == f"@{ZWSP}octocat, @{ZWSP}org/team and a@b.com"


def test_copies_of_our_markers_are_broken_up():
    assert "cml-action:report:" not in defuse_markers("<!-- cml-action:report:0123456789abcdef -->")


@given(st.text(alphabet="`ab \n", max_size=40))
def test_a_code_block_is_never_closed_by_its_content(text: str):
    block = code_block(text)
    pieces = _segments(block + "\n\nafter")
    assert pieces[0][1] and pieces[0][0].rstrip("\n").endswith(block.rsplit("\n", 1)[-1])
    assert pieces[-1] == ("\n\nafter", False) or pieces[-1][0].endswith("after")


def test_a_code_span_holds_backticks():
    assert code("a ``b`` c") == "```a ``b`` c```" and code("`x") == "`` `x ``"
