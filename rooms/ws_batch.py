"""Several WebSocket text frames in one ``write()``: the live fan-out's writer for uvicorn.

The ASGI interface sends one message per call, and uvicorn's ``websockets-sansio`` protocol turns
each ``websocket.send`` into its own ``transport.write`` (a system call on a TCP socket, and on
loopback the receiver's wake-up in the same call). Under the chat bench that was a quarter of a web
process's time and most of the machine's system time: 50 listeners x N messages/s writes.

:func:`text_writer` returns, for the ``send`` callable an ASGI server gave a WebSocket connection,
a coroutine function that writes a list of text frames. When ``send`` is uvicorn's
``WebSocketsSansIOProtocol.send`` (the server Concord runs, ``--ws websockets-sansio``), the frames
are framed by the connection's own ``websockets`` protocol object (so negotiated extensions such
as per-message deflate, and its state checks, still apply) and written with one
``transport.write``. For any other server or wrapper it sends one ``websocket.send`` per frame, as
before.

Guarantees, same as one ``websocket.send`` per frame: frames leave in list order; it waits while the
transport is paused (the client's TCP window is full) and the caller's buffer bound applies;
after the client went away it raises ``uvicorn``'s ``ClientDisconnected``; after a close was sent
(or before the handshake finished) it goes through the ASGI ``send``, which raises the server's own
error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
TextWriter = Callable[[list[str]], Awaitable[None]]

# Known below-ASGI targets: (module, class name). Anything else gets the per-frame path.
_SANSIO = ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol")


def _sansio_protocol(send: Send) -> Any | None:
    proto = getattr(send, "__self__", None)
    if proto is None:
        return None
    cls = type(proto)
    if (cls.__module__, cls.__name__) != _SANSIO:
        return None
    if getattr(send, "__func__", None) is not getattr(cls, "send", None):
        return None
    needed = ("conn", "transport", "writable", "disconnected", "close_sent", "initial_response",
              "handshake_complete")
    return proto if all(hasattr(proto, name) for name in needed) else None


def text_writer(send: Send) -> TextWriter:
    """A writer of text frames for the connection ``send`` belongs to (see the module docstring)."""
    proto = _sansio_protocol(send)
    if proto is None:
        async def write_each(texts: list[str]) -> None:
            for text in texts:
                await send({"type": "websocket.send", "text": text})
        return write_each

    # Only reached under uvicorn (whose dependency websockets is): other servers need neither.
    from uvicorn.protocols.utils import ClientDisconnected
    from websockets.exceptions import InvalidState

    async def write_batched(texts: list[str]) -> None:
        await proto.writable.wait()
        if proto.disconnected:
            raise ClientDisconnected()
        if proto.close_sent or proto.initial_response is not None or not proto.handshake_complete:
            for text in texts:  # the server's own checks and errors
                await send({"type": "websocket.send", "text": text})
            return
        conn = proto.conn
        try:
            for text in texts:
                conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        proto.transport.write(b"".join(conn.data_to_send()))

    write_batched.batched = True  # type: ignore[attr-defined]  # tests tell the two paths apart
    return write_batched
