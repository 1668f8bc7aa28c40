"""The REST API's JSON body parser: DRF's, plus refusing JSON that parses but cannot be used.

Python's ``json`` accepts three things that later break far from the request: nesting deep enough
to exhaust the interpreter's recursion limit (a ``RecursionError`` in the parser, or in any code
that walks the value), ``\\ud800``-style escapes of lone UTF-16 surrogates (valid JSON, but not
Unicode: no database or UTF-8 encoder can take them) and numbers too large for a float (read as
``inf``, which JSON output cannot carry). Each is a ``ParseError`` here, so the caller gets
Rocket.Chat's ``error-invalid-params`` instead of a server error, and nothing half-done is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

#: The deepest nesting of arrays and objects accepted in a JSON value (Rocket.Chat's own
#: payloads, attachments within attachments included, stay under ten).
MAX_JSON_DEPTH = 64

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def json_problem(value: Any) -> str | None:
    """Why the parsed JSON ``value`` cannot be used, or None when it can.

    Walks iteratively (no recursion), so it is safe on any value ``json`` produced.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_RE.search(item):
                return "a string holds an unpaired UTF-16 surrogate, which is not Unicode"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "a number is out of range"
        elif isinstance(item, (list, Mapping)):
            if depth >= MAX_JSON_DEPTH:
                return f"arrays and objects are nested more than {MAX_JSON_DEPTH} deep"
            if isinstance(item, Mapping):
                stack.extend((k, depth + 1) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
    return None


class RocketChatJSONParser(JSONParser):
    """DRF's JSON parser; too deep, surrogate-holding or out-of-range JSON is a ``ParseError``."""

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - arrays and objects are nested more than "
                             f"{MAX_JSON_DEPTH} deep") from exc
        problem = json_problem(data)
        if problem is not None:
            raise ParseError(f"JSON parse error - {problem}")
        return data
