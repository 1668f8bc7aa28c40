"""Identifiers shaped like Rocket.Chat's: 17 characters from an unambiguous alphabet."""

import secrets

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"


def random_id(length: int = 17) -> str:
    """Return a random identifier (about 98 bits of entropy for the default length)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
