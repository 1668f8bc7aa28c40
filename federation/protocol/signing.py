"""Ed25519 keys and signed JSON (spec appendix "Signing JSON").

To sign an object: drop ``signatures`` and ``unsigned``, encode the rest as
canonical JSON, sign with Ed25519, store the unpadded standard base64 signature
under ``signatures[entity]["ed25519:<version>"]``, put ``unsigned`` back.
Verification reverses this.  Key versions are ``[a-zA-Z0-9_]+``.

:func:`sign_json` and :func:`verify_json_signature` work on any JSON object
(requests, key responses, events' redacted forms).  Event signing, which signs
the *redacted* event, lives in :mod:`federation.protocol.event_signing`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.signing
from unpaddedbase64 import decode_base64, encode_base64

from .canonical_json import encode_canonical_json
from .errors import SignatureError

ALGORITHM = "ed25519"


def _make_open() -> Callable[[bytes, bytes], bool]:
    """An Ed25519 check of ``signature + message`` against a public key.

    PyNaCl's ``crypto_sign_open`` allocates two C buffers per call; with many
    small events that costs as much as a fifth of the verification.  Call the
    same libsodium function through PyNaCl's cffi module with a per-thread
    buffer instead, falling back to the public binding if that module moves.
    """
    try:
        from nacl._sodium import ffi, lib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # pragma: no cover - depends on PyNaCl internals
        return _open_public
    local = threading.local()

    def open_signed(signed: bytes, public_key: bytes) -> bool:
        buf = getattr(local, "buf", None)
        if buf is None or len(buf) < len(signed):
            buf = local.buf = ffi.new("unsigned char[]", max(len(signed), 70_000))
            local.mlen = ffi.new("unsigned long long *")
        return bool(lib.crypto_sign_open(buf, local.mlen, signed, len(signed), public_key) == 0)

    return open_signed


def _open_public(signed: bytes, public_key: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signed, public_key)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


_open = _make_open()
_VERSION = re.compile(r"[a-zA-Z0-9_]+\Z")


def _check_version(version: str) -> None:
    if not _VERSION.match(version):
        raise SignatureError(f"bad key version {version!r}: use [a-zA-Z0-9_]+")


def parse_key_id(key_id: str) -> tuple[str, str]:
    """Split ``"ed25519:abc"`` into ``("ed25519", "abc")``.

    Raises:
        SignatureError: if there is no ``:`` or the version has bad characters.
    """
    alg, sep, version = key_id.partition(":")
    if not sep:
        raise SignatureError(f"bad key ID {key_id!r}")
    _check_version(version)
    return alg, version


# Server signing keys whose private half is known (published, or open to attack): nothing signed
# with one of them counts, whoever presents it (as Synapse refuses them since 1.147.1,
# ELEMENTSEC-2025-1670). Unpadded standard base64 of the public keys.
KNOWN_INSECURE_KEYS: frozenset[str] = frozenset({
    "l/O9hxMVKB6Lg+3Hqf0FQQZhVESQcMzbPN1Cz2nM3og",
})


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An Ed25519 public key with its version (the part after ``ed25519:``)."""

    version: str
    key_bytes: bytes

    def __post_init__(self) -> None:
        _check_version(self.version)
        if len(self.key_bytes) != 32:
            raise SignatureError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> str:
        """``"ed25519:<version>"``."""
        return f"{ALGORITHM}:{self.version}"

    @classmethod
    def decode(cls, key_id: str, key_base64: str) -> VerifyKey:
        """Build from a key ID and the unpadded base64 public key.

        Raises:
            SignatureError: on a non-ed25519 key, bad version or bad base64.
        """
        alg, version = parse_key_id(key_id)
        if alg != ALGORITHM:
            raise SignatureError(f"unsupported key algorithm {alg!r}")
        try:
            raw = decode_base64(key_base64)
        except Exception as exc:
            raise SignatureError("bad base64 in verify key") from exc
        return cls(version, raw)

    def encode(self) -> str:
        """The public key as unpadded standard base64."""
        return encode_base64(self.key_bytes)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check a detached signature.

        Raises:
            SignatureError: if it does not verify, or the key is in :data:`KNOWN_INSECURE_KEYS`.
        """
        if len(signature) != 64:
            raise SignatureError("an Ed25519 signature is 64 bytes")
        if self.encode() in KNOWN_INSECURE_KEYS:
            raise SignatureError("signed with a known-insecure key (its private half is public)")
        if not _open(signature + message, self.key_bytes):
            raise SignatureError("signature does not verify")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key with its version.  ``repr`` never shows the seed."""

    version: str
    seed: bytes = field(repr=False)
    _nacl: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_version(self.version)
        if len(self.seed) != 32:
            raise SignatureError("an Ed25519 seed is 32 bytes")
        object.__setattr__(self, "_nacl", nacl.signing.SigningKey(self.seed))

    @classmethod
    def generate(cls, version: str) -> SigningKey:
        """A new random key."""
        return cls(version, bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed(cls, seed: bytes | str, version: str) -> SigningKey:
        """From a 32-byte seed, raw or as unpadded base64 (Synapse's key files)."""
        raw = decode_base64(seed) if isinstance(seed, str) else seed
        return cls(version, raw)

    @classmethod
    def from_key_file_line(cls, line: str) -> SigningKey:
        """Parse one ``"ed25519 <version> <base64 seed>"`` line (Synapse format).

        Raises:
            SignatureError: if the line is malformed.
        """
        parts = line.split()
        if len(parts) != 3 or parts[0] != ALGORITHM:
            raise SignatureError("expected 'ed25519 <version> <seed>'")
        return cls.from_seed(parts[2], parts[1])

    def to_key_file_line(self) -> str:
        """The inverse of :meth:`from_key_file_line`."""
        return f"{ALGORITHM} {self.version} {encode_base64(self.seed)}"

    @property
    def key_id(self) -> str:
        """``"ed25519:<version>"``."""
        return f"{ALGORITHM}:{self.version}"

    @property
    def verify_key(self) -> VerifyKey:
        """The matching public key."""
        return VerifyKey(self.version, bytes(self._nacl.verify_key))

    def sign(self, message: bytes) -> bytes:
        """A 64-byte detached signature of ``message``."""
        return self._nacl.sign(message).signature


def signing_payload(obj: Mapping[str, Any]) -> bytes:
    """The canonical bytes a signature of ``obj`` covers (no signatures/unsigned).

    Raises:
        CanonicalJsonError: if ``obj`` is not strict canonical JSON.
    """
    return encode_canonical_json(
        {k: v for k, v in obj.items() if k != "signatures" and k != "unsigned"}
    )


def sign_json(
    obj: Mapping[str, Any], entity: str, key: SigningKey
) -> dict[str, Any]:
    """Return a copy of ``obj`` with ``entity``'s signature added.

    Existing signatures (of other entities or other keys) are kept; ``unsigned``
    is kept and not covered.
    """
    signature = encode_base64(key.sign(signing_payload(obj)))
    signed = dict(obj)
    signatures = {k: dict(v) for k, v in obj.get("signatures", {}).items()}
    signatures.setdefault(entity, {})[key.key_id] = signature
    signed["signatures"] = signatures
    return signed


def verify_json_signature(
    obj: Mapping[str, Any],
    entity: str,
    key: VerifyKey,
    payload: bytes | None = None,
) -> None:
    """Check that ``obj`` carries a valid signature by ``entity`` with ``key``.

    Args:
        obj: the signed JSON object.
        entity: the server name the signature must be listed under.
        key: the public key; its ``key_id`` selects the signature.
        payload: the canonical signed bytes if the caller already has them.

    Raises:
        SignatureError: if missing, malformed or invalid.
    """
    try:
        sig_b64 = obj["signatures"][entity][key.key_id]
    except (KeyError, TypeError) as exc:
        raise SignatureError(f"no signature from {entity} with {key.key_id}") from exc
    if not isinstance(sig_b64, str):
        raise SignatureError("signature is not a string")
    try:
        sig = decode_base64(sig_b64)
    except Exception as exc:
        raise SignatureError("signature is not base64") from exc
    key.verify(payload if payload is not None else signing_payload(obj), sig)


def signature_key_ids(obj: Mapping[str, Any], entity: str) -> list[str]:
    """The ed25519 key IDs ``entity`` signed ``obj`` with (others are ignored)."""
    sigs = obj.get("signatures")
    if not isinstance(sigs, Mapping):
        return []
    mine = sigs.get(entity)
    if not isinstance(mine, Mapping):
        return []
    return [k for k in mine if isinstance(k, str) and k.startswith(ALGORITHM + ":")]
