"""The errors of the federation boundary, in both directions.

* :class:`MatrixError`: what we answer a request with (HTTP status, Matrix ``errcode``, message);
  handlers raise it, the endpoint decorator (:mod:`federation.api.endpoint`) turns it into the
  spec's error body.
* :class:`FederationError`: an outbound request failed (no answer, non-2xx, not JSON).
* :class:`KeyFetchError`: a remote server's keys could not be fetched or did not check out.
"""

from __future__ import annotations

from typing import Any


class MatrixError(Exception):
    """An error answer: HTTP status, Matrix errcode, message."""

    def __init__(self, status: int, errcode: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.errcode = errcode
        self.error = error


class FederationError(Exception):
    """An outbound request failed.

    Attributes:
        status: HTTP status, or 0 if there was no HTTP answer (DNS, connect, TLS, timeout).
        errcode: the Matrix ``errcode`` of the answer, if any.
        body: the parsed error body, if any.
    """

    def __init__(self, message: str, status: int = 0, errcode: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.body = body


class KeyFetchError(Exception):
    """A remote server's keys could not be fetched or did not check out."""
