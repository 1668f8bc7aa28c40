"""Markdown rendering for messages: rendered once at write time, sanitized, never trusted.

The source is CommonMark with raw HTML disabled (so ``<script>`` stays text), links get
``rel="nofollow noopener"`` and ``target="_blank"``, and the result passes through ``nh3`` with an
allow-list, so even a bug in the renderer cannot let script or event handlers through. Mentions
(``@user``, ``@all``, ``@here``) are wrapped in ``<span class="mention">``.
"""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

_md = (MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True})
       .enable("strikethrough").enable("table"))

MENTION_RE = re.compile(r"(?<![\w@/])@([A-Za-z0-9_.\-]+(?::[A-Za-z0-9.\-]+(?::\d+)?)?)")

_ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "span",
}
_ALLOWED_ATTRS = {"a": {"href", "title", "target"}, "span": {"class", "data-username"}, "code": {"class"},
                  "th": {"style"}, "td": {"style"}}


# Text no rule of the renderer can change: one line that starts with a letter, then letters, digits,
# ``,.?!:;'()/-`` and single spaces between them, and maybe spaces at the end, which the renderer
# drops (no list marker, heading, emphasis, code, link, entity, HTML, table, strikethrough, line
# break or mention; nothing to escape). Most chat messages.
_PLAIN_RE = re.compile(r"[A-Za-z](?:[A-Za-z0-9,.?!:;'()/\-]| (?=[A-Za-z0-9,.?!:;'()/\-]))* *")


def render_markdown(text: str) -> str:
    """Render ``text`` to sanitized HTML. Pure: the same input always gives the same output.

    Plain text (see ``_PLAIN_RE``) is wrapped in a paragraph without running the renderer and the
    sanitizer, which would give exactly that (``tests/rooms/test_markdown.py`` compares the two)."""
    if _PLAIN_RE.fullmatch(text):
        return f"<p>{text.rstrip(' ')}</p>"
    return _render(text)


def _render(text: str) -> str:
    """The renderer, the mention markup and the sanitizer, for any text."""
    rendered = _md.render(text)
    rendered = _wrap_mentions(rendered)
    return nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRS,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    ).strip()


def _wrap_mentions(rendered: str) -> str:
    # Only touch text outside tags and outside <code>/<pre>.
    out: list[str] = []
    in_code = 0
    for part in re.split(r"(<[^>]+>)", rendered):
        if part.startswith("<"):
            tag = part.lower()
            if tag.startswith(("<code", "<pre")):
                in_code += 1
            elif tag.startswith(("</code", "</pre")):
                in_code = max(0, in_code - 1)
            out.append(part)
        elif in_code:
            out.append(part)
        else:
            out.append(MENTION_RE.sub(
                lambda m: f'<span class="mention" data-username="{html.escape(m.group(1))}">@{m.group(1)}</span>',
                part))
    return "".join(out)


def mentioned_usernames(text: str) -> set[str]:
    """Usernames mentioned with ``@`` in ``text`` (outside code), including ``all`` and ``here``."""
    stripped = re.sub(r"```.*?```|`[^`]*`", " ", text, flags=re.S)
    return {m.group(1).rstrip(".") for m in MENTION_RE.finditer(stripped)}
