"""Reaction keys both ways: the chat's ``:shortcode:`` <-> the emoji character Matrix sends.

The table is ``static/app/emoji.json``, the same file the web client imports, so a reaction
shows the same on both sides. A Matrix key with no shortcode here (any other character or text) is
kept as ``:<key>:``, which the web client shows as the key itself; a shortcode with no character
goes out as its ``:shortcode:`` text (Matrix keys are free text).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

TABLE_FILE = Path(__file__).resolve().parents[2] / "static" / "app" / "emoji.json"


@functools.cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    data = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    by_code: dict[str, str] = {}
    by_char: dict[str, str] = {}
    for code, char in [*data["emoji"], *data["aliases"]]:
        by_code.setdefault(code, char)
        by_char.setdefault(char, code)
        by_char.setdefault(char.replace("\ufe0f", ""), code)  # with or without the emoji presentation selector
    return by_code, by_char


def key_for_shortcode(shortcode: str) -> str:
    """``:thumbsup:`` -> ``👍`` (an unknown shortcode stays ``:name:``; ``:<char>:`` gives the char)."""
    name = shortcode.strip(":")
    by_code, _ = _tables()
    if name in by_code:
        return by_code[name]
    return name if name and not name.isascii() else f":{name}:"


def shortcode_for_key(key: str) -> str:
    """``👍`` -> ``:thumbsup:`` (a key with no shortcode is kept as ``:<key>:``)."""
    _, by_char = _tables()
    code = by_char.get(key) or by_char.get(key.replace("\ufe0f", ""))
    if code is not None:
        return f":{code}:"
    return key if key.startswith(":") and key.endswith(":") and len(key) > 2 else f":{key}:"
