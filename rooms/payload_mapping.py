"""Script-free mapping of a webhook payload to message fields (instead of Rocket.Chat's scripts).

An incoming integration may carry a ``payloadMapping``: ``{field: template}`` where ``field`` is one
of :data:`MAPPED_FIELDS` and ``template`` is text in which ``{dotted.path}`` stands for the value at
that path of the JSON payload (a number in the path indexes a list: ``{commits.0.message}``).
``{{`` and ``}}`` are literal braces. A GitHub/Gitea push hook, for example, becomes a message with::

    {"text": "[{repository.full_name}] {pusher.name} pushed: {head_commit.message}"}

Pure functions, no Django: tested without a database.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAPPED_FIELDS = ("text", "alias", "emoji", "avatar")
MAX_TEMPLATE_LENGTH = 4000
_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)\}")


class MappingError(ValueError):
    """The mapping itself is malformed (not the payload: missing payload values render as empty)."""


def check_mapping(mapping: Any) -> dict[str, str]:
    """Validate a ``payloadMapping``: a JSON object of known fields to template strings.

    Guarantees: the result has only keys of :data:`MAPPED_FIELDS`, each a string of at most
    :data:`MAX_TEMPLATE_LENGTH` characters. ``None`` means no mapping (``{}``).
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise MappingError("payloadMapping must be an object of field: template")
    out: dict[str, str] = {}
    for key, template in mapping.items():
        if key not in MAPPED_FIELDS:
            raise MappingError(f"payloadMapping: unknown field {key!r} (one of {', '.join(MAPPED_FIELDS)})")
        if not isinstance(template, str) or len(template) > MAX_TEMPLATE_LENGTH:
            raise MappingError(f"payloadMapping: {key} must be a string of at most {MAX_TEMPLATE_LENGTH} characters")
        out[key] = template
    return out


def lookup(payload: Any, path: str) -> Any:
    """The value at ``path`` (dot-separated keys; integers index lists) or None when absent."""
    value = payload
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render(template: str, payload: Any) -> str:
    """``template`` with each ``{path}`` replaced by the payload's value there as text.

    Absent values render as the empty string; strings and numbers as themselves; booleans as
    ``true``/``false``; objects and lists as compact JSON.
    """
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return _as_text(lookup(payload, match.group(1)))

    return _PLACEHOLDER_RE.sub(replace, template)


def apply_mapping(mapping: dict[str, str], payload: Any) -> dict[str, str]:
    """The message fields the mapping produces from ``payload`` (only the mapped ones)."""
    return {field: render(template, payload) for field, template in mapping.items()}
