"""Unit tests of :mod:`rooms.markdown`: rendering, mentions, and that no input yields script."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.markdown import _PLAIN_RE, _render, mentioned_usernames, render_markdown

XSS_ATTEMPTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![img](javascript:alert(1))",
    '![x](https://example.org/x.png" onerror="alert(1))',
    "<a href=\"javascript:alert(1)\">x</a>",
    "<svg/onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "`<script>` and ```\n<script>alert(1)</script>\n```",
    '[x](https://example.org "title\\" onmouseover=\\"alert(1)")',
    "@<script>alert(1)</script>",
    '@user"onmouseover="alert(1)',
    "<<script>script>alert(1)<</script>/script>",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "<details open ontoggle=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]

_ALLOWED = {"p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2",
            "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "span"}


class _Tags(HTMLParser):
    """Collects (tag, attributes) the way a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


@pytest.mark.parametrize("source", XSS_ATTEMPTS)
def test_no_script_survives(source: str) -> None:
    out = render_markdown(source)
    parser = _Tags()
    parser.feed(out)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in _ALLOWED, out
        for name, value in attrs:
            assert not name.startswith("on"), out
            assert name != "style" or tag in ("th", "td"), out
            if name in ("href", "src"):
                # An allowed scheme, or no scheme at all (a relative "java%09script:..." is inert).
                scheme = re.match(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):", value or "")
                assert scheme is None or scheme.group(1).lower() in ("http", "https", "mailto"), out
    assert "<script" not in out.lower() and "<img" not in out.lower() and "<iframe" not in out.lower(), out


def test_basic_formatting() -> None:
    out = render_markdown("**bold** _em_ ~~gone~~ `code`")
    assert "<strong>bold</strong>" in out
    assert "<em>em</em>" in out
    assert "<del>gone</del>" in out or "<s>gone</s>" in out
    assert "<code>code</code>" in out


def test_links_get_safe_attributes() -> None:
    out = render_markdown("[site](https://example.org/a?b=1&c=2)")
    assert 'href="https://example.org/a?b=1&amp;c=2"' in out
    assert 'target="_blank"' in out
    assert "noopener" in out and "nofollow" in out


def test_html_is_shown_as_text() -> None:
    out = render_markdown("a <b>b</b> & c")
    assert "&lt;b&gt;b&lt;/b&gt;" in out and "&amp; c" in out


def test_code_block_keeps_text() -> None:
    out = render_markdown("```\nif a < b: @bob\n```")
    assert "<pre><code>" in out and "a &lt; b" in out
    assert "mention" not in out  # no mention markup inside code


def test_mentions_markup_and_extraction() -> None:
    out = render_markdown("hi @bob and @all, mail a@b.example")
    assert '<span class="mention" data-username="bob">@bob</span>' in out
    assert 'data-username="all"' in out
    assert 'data-username="b.example"' not in out
    assert mentioned_usernames("hi @bob and @all, `@code` a@b.example @carol.") == {"bob", "all", "carol"}
    assert mentioned_usernames("```\n@hidden\n```") == set()


def test_federated_mention() -> None:
    assert mentioned_usernames("ping @alice:matrix.example.org") == {"alice:matrix.example.org"}


def test_line_breaks_and_lists() -> None:
    out = render_markdown("one\ntwo\n\n- a\n- b")
    assert "<br>" in out or "<br />" in out
    assert "<ul>" in out and out.count("<li>") == 2


def test_deterministic_and_empty() -> None:
    # CommonMark's answer for this input, and the same answer on every call.
    assert [render_markdown("same *text*") for _ in range(2)] == ["<p>same <em>text</em></p>"] * 2
    assert render_markdown("") == ""


PLAIN_ALPHABET = "abcXYZ019 ,.?!:;'()/-"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=PLAIN_ALPHABET + "*_`#-+>|~[]()<&@:\n\t1.", max_size=40))
def test_the_plain_text_shortcut_gives_what_the_renderer_gives(text: str) -> None:
    assert render_markdown(text) == _render(text)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=PLAIN_ALPHABET, min_size=1, max_size=60))
def test_plain_text_of_chat_messages(text: str) -> None:
    assert render_markdown(text) == _render(text)


@pytest.mark.parametrize("special", list("*_`#-+>|~[]()<&@:;'/\"\\\n\t=") + ["1.", "  ", " - ", "---", "::", ":)"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_sentences_with_one_more_kind_of_character(special: str, data: st.DataObject) -> None:
    words = data.draw(st.lists(st.sampled_from(["ab", "Xy", "09", special, ",", "!", " "]), max_size=12))
    text = "a" + "".join(words)
    assert render_markdown(text) == _render(text)


def test_the_shortcut_takes_ordinary_sentences_and_nothing_that_renders_differently() -> None:
    for text in ("bench 297", "Hello world, how are you?", "ok. see you at 10.30!", "it's 3:30 (or so) - a/b"):
        assert _PLAIN_RE.fullmatch(text) and render_markdown(text) == _render(text) == f"<p>{text}</p>"
    assert _PLAIN_RE.fullmatch("bench message 3: lorem ipsum ")
    assert render_markdown("bench message 3: lorem ipsum  ") == "<p>bench message 3: lorem ipsum</p>"
    for text in ("1. first", "a  b", " a", "*a*", 'say "hi"', "a\nb", "@bob hi", "a | b", "x &amp; y", "- a", "#a"):
        assert not _PLAIN_RE.fullmatch(text)
