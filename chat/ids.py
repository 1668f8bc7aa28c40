"""Identifiers shaped like Rocket.Chat's: 17 characters from an unambiguous alphabet."""

import secrets

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
# Bytes below this limit map evenly onto the alphabet (b % 55); the rest are skipped.
_LIMIT = 256 - 256 % len(_ALPHABET)


def random_id(length: int = 17) -> str:
    """Return a random identifier (about 98 bits of entropy for the default length).

    Each character is drawn uniformly from the alphabet, as ``secrets.choice`` would, but from one
    read of the OS's random source (rejection sampling of bytes) instead of one call per
    character: bulk inserts make thousands of IDs at a time.
    """
    out: list[str] = []
    while len(out) < length:
        for b in secrets.token_bytes(length + 8):
            if b < _LIMIT:
                out.append(_ALPHABET[b % len(_ALPHABET)])
                if len(out) == length:
                    break
    return "".join(out)
