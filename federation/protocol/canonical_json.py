"""Matrix canonical JSON, strictly as room versions 6+ require.

The ``canonicaljson`` package produces the right bytes (sorted keys, no
whitespace, UTF-8 without needless escapes) but does not refuse what the spec
forbids.  This module adds the checks:

* integers must lie in ``[-(2**53)+1, 2**53-1]``;
* floats (including NaN and the infinities) are refused, even ``1.0``;
* ``bool`` is a subclass of ``int`` in Python: ``True`` is encoded as ``true``,
  never confused with ``1`` and never range-checked as a number;
* object keys must be strings; only dict/list/tuple/str/int/bool/None allowed.

Functions:

* :func:`check_canonical_value` - raise if a value is not representable.
* :func:`encode_canonical_json` - check, then encode to bytes.
* :func:`parse_json` - parse wire bytes strictly (no float literals, no NaN,
  integer range enforced); what the federation boundary should use.
* :func:`canonicalise_json_text` - the appendix transformation of arbitrary JSON
  text, where a number literal that denotes an integer (``-0``, ``1e10``) is
  normalised (``0``, ``10000000000``) as the spec's examples show.
"""

from __future__ import annotations

import json
import json.encoder
import re
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from canonicaljson import encode_canonical_json as _encode

from .errors import CanonicalJsonError

MIN_INT = -(2**53) + 1
MAX_INT = 2**53 - 1


def check_canonical_value(value: object) -> None:
    """Raise unless ``value`` can be encoded as strict canonical JSON.

    Raises:
        CanonicalJsonError: naming the first offending path.
    """
    stack: list[tuple[object, str]] = [(value, "$")]
    while stack:
        item, path = stack.pop()
        t = type(item)
        if t is str or t is bool or item is None:
            continue
        if t is int:
            if not MIN_INT <= item <= MAX_INT:  # type: ignore[operator]
                raise CanonicalJsonError(f"integer out of range at {path}")
        elif t is dict:
            for k, v in item.items():  # type: ignore[attr-defined]
                if type(k) is not str:
                    raise CanonicalJsonError(f"non-string key at {path}")
                stack.append((v, f"{path}.{k}"))
        elif t is list or t is tuple:
            for i, v in enumerate(item):  # type: ignore[arg-type]
                stack.append((v, f"{path}[{i}]"))
        elif t is float:
            raise CanonicalJsonError(f"float at {path}")
        elif isinstance(item, bool | int | str | dict | list | tuple):
            # A subclass (e.g. an IntEnum or a frozendict): re-check as the base.
            base: Any
            if isinstance(item, bool):
                base = bool(item)
            elif isinstance(item, int):
                base = int(item)
            elif isinstance(item, str):
                base = str(item)
            elif isinstance(item, dict):
                base = dict(item)
            else:
                base = list(item)
            stack.append((base, path))
        else:
            raise CanonicalJsonError(f"{t.__name__} is not JSON at {path}")


def encode_canonical_json(value: object) -> bytes:
    """Encode ``value`` as canonical JSON bytes after checking it is strict.

    Raises:
        CanonicalJsonError: if the value is not representable (see module doc).
    """
    check_canonical_value(value)
    return _encode(value)


def _not_json(value: object) -> NoReturn:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _make_fast_encoder() -> Any:
    # The stdlib's C encoder with canonicaljson's settings (UTF-8 rather than
    # \u escapes, "," and ":" separators, sorted keys, no NaN), built once:
    # json.dumps and canonicaljson build a new one on every call, which costs
    # about a third of encoding a small event.  Without circular-reference
    # markers, since parsed JSON cannot be circular.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return None
    return make(None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False)


_fast_encoder = _make_fast_encoder()


def encode_canonical_json_unchecked(value: object) -> bytes:
    """Encode without the strictness walk; for values already checked once.

    Byte-for-byte what ``canonicaljson.encode_canonical_json`` produces for
    plain JSON values (dict, list, str, int, bool, None); uses a reusable C
    encoder.

    Raises:
        TypeError: for a value JSON cannot hold.
        ValueError: for NaN or an infinity.
    """
    if _fast_encoder is None:  # pragma: no cover
        return _encode(value)
    return "".join(_fast_encoder(value, 0)).encode("utf-8")


# In canonical JSON output (no whitespace) every number follows ":", "," or "[".
# A float or an over-long integer there is suspect; inside a string the same
# text can occur harmlessly, so a hit is settled by the exact object walk.
_SUSPECT_NUMBER = re.compile(rb"[:,\[]-?\d+[.eE]|[:,\[]-?\d{16,}")


def encode_parsed_json(value: object) -> bytes:
    """Encode strict canonical JSON, checking strictness mostly on the bytes.

    Same result and same refusals as :func:`encode_canonical_json` for values
    that came out of a JSON parser (whose object keys are always strings), but
    usually without walking the Python objects: one regular-expression search
    of the output finds every float or possibly out-of-range integer (and some
    harmless look-alikes inside strings); only then does the exact walk run.
    Do not use it for hand-built dicts with non-string keys (the stdlib encoder
    quietly turns ``1`` into ``"1"``).

    Raises:
        CanonicalJsonError: if the value is not strict canonical JSON.
    """
    try:
        data = encode_canonical_json_unchecked(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CanonicalJsonError(str(exc)) from exc
    if _SUSPECT_NUMBER.search(data) or data[:1] in b"-0123456789":
        check_canonical_value(value)
    return data


def _reject_float(literal: str) -> NoReturn:
    raise CanonicalJsonError(f"non-integer number {literal!r}")


def _reject_constant(name: str) -> NoReturn:
    raise CanonicalJsonError(f"{name} is not valid JSON")


def _checked_int(literal: str) -> int:
    n = int(literal)
    if not MIN_INT <= n <= MAX_INT:
        raise CanonicalJsonError(f"integer {literal} out of range")
    return n


def parse_json(data: bytes | str) -> Any:
    """Parse JSON from the wire, refusing anything canonical JSON cannot hold.

    Raises:
        CanonicalJsonError: on floats/exponents, NaN/Infinity, out-of-range
            integers, or malformed JSON / UTF-8.
    """
    try:
        return json.loads(
            data,
            parse_float=_reject_float,
            parse_int=_checked_int,
            parse_constant=_reject_constant,
        )
    except CanonicalJsonError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise CanonicalJsonError(f"malformed JSON: {exc}") from exc


def _integral_number(literal: str) -> int:
    try:
        d = Decimal(literal)
    except InvalidOperation as exc:  # pragma: no cover - json already validated it
        raise CanonicalJsonError(f"bad number {literal!r}") from exc
    if d != d.to_integral_value():
        raise CanonicalJsonError(f"non-integer number {literal!r}")
    return _checked_int(str(int(d)))


def canonicalise_json_text(text: str | bytes) -> bytes:
    """Turn arbitrary JSON text into canonical JSON bytes.

    Number literals that denote integers in range are normalised, as in the
    spec appendix (``{"a": -0, "b": 1e10}`` gives ``{"a":0,"b":10000000000}``);
    a number with a fractional part is refused.

    Raises:
        CanonicalJsonError: on fractional numbers, out-of-range integers,
            NaN/Infinity or malformed JSON.
    """
    try:
        value = json.loads(
            text,
            parse_float=_integral_number,
            parse_int=_checked_int,
            parse_constant=_reject_constant,
        )
    except CanonicalJsonError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise CanonicalJsonError(f"malformed JSON: {exc}") from exc
    return encode_canonical_json(value)
