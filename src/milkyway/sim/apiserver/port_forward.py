"""``pods/portforward``: local ports reaching a port at the pod's address.

Two WebSocket forms are served, one per kind of client:

* ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.32): SPDY tunnelled in the WebSocket. For
  each local connection the client opens an error stream and a data stream carrying
  ``port`` and ``requestid`` headers; the server answers both, connects to
  ``status.podIP:port`` and copies bytes both ways, ending the data stream when the pod
  side closes and the error stream after it (with a message when the connection to the
  pod failed). A client's FIN half-closes the connection to the pod.
* ``v4.channel.k8s.io`` with ``?ports=...`` (the official Python client): channel
  ``2i`` carries port ``i``'s data and ``2i+1`` its errors; each channel's first message
  is the port number (two bytes, little-endian).

The pod's address is its ``status.podIP``: a process-backed pod's own loopback address,
or any address a test server listens on. A pod with no IP yet is refused with 400 before
the upgrade, as the real server refuses a pod that is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from milkyway.sim.apiserver import channel_protocol as ch
from milkyway.sim.apiserver import errors, spdy
from milkyway.sim.apiserver.http_proxy import dial_failure

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

log = logging.getLogger(__name__)

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_CHUNK = 32 * 1024


async def serve_port_forward(
    request: web.Request, api: ClusterAPI, name: str, namespace: str
) -> web.StreamResponse:
    pod = api.get("pods", name, namespace=namespace)
    host = (pod.get("status") or {}).get("podIP")
    if not host:
        raise errors.bad_request(f'pod "{name}" has no IP address yet: it is not running')
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.bad_request(
            "pods/portforward is served over WebSocket only (subprotocols "
            f"{SPDY_TUNNEL}, {ch.V4}); plain SPDY upgrades are not supported"
        )
    offered = ch.offered(request.headers.get("Sec-WebSocket-Protocol", ""))
    if SPDY_TUNNEL in offered:
        try:
            dictionary = await asyncio.to_thread(spdy.header_dictionary)
        except spdy.SpdyUnavailable as exc:
            raise errors.service_unavailable(str(exc)) from None
        ws = web.WebSocketResponse(protocols=(SPDY_TUNNEL,), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        session = _SpdySession(ws, host, f"{namespace}/{name}", spdy.HeaderCodec(dictionary))
        await session.run()
        return ws
    if ch.V4 in offered:
        ports = _ports(request)
        ws = web.WebSocketResponse(protocols=(ch.V4,), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        await _serve_channels(ws, host, ports)
        return ws
    raise errors.bad_request(
        f"none of the offered WebSocket subprotocols {offered} is served: use "
        f"{SPDY_TUNNEL} (kubectl) or {ch.V4} with ?ports="
    )


def _ports(request: web.Request) -> list[int]:
    ports: list[int] = []
    for raw in request.query.getall("ports", []):
        for text in raw.split(","):
            try:
                port = int(text)
            except ValueError:
                raise errors.bad_request(f'invalid port "{text}": use a number 1-65535') from None
            if not 0 < port < 65536:
                raise errors.bad_request(f"invalid port {port}: use a number 1-65535")
            ports.append(port)
    if not ports:
        raise errors.bad_request("name at least one port: ?ports=8080")
    return ports


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_SECONDS)


def _dial_error(pod: str, host: str, port: int, exc: BaseException) -> str:
    return (
        f"error forwarding port {port} to pod {pod}: dial tcp {host}:{port}: "
        f"connect: {dial_failure(exc)}"
    )


# ------------------------------------------------------------------ SPDY in WebSocket


@dataclass
class _Stream:
    stream_id: int
    kind: str
    port: int
    request_id: str
    remote_closed: bool = False
    pending: list[bytes] = field(default_factory=list)
    writer: asyncio.StreamWriter | None = None


class _SpdySession:
    def __init__(
        self, ws: web.WebSocketResponse, host: str, pod: str, codec: spdy.HeaderCodec
    ) -> None:
        self.ws = ws
        self.host = host
        self.pod = pod
        self.codec = codec
        self.frames = spdy.FrameReader()
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, dict[str, _Stream]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.send_lock = asyncio.Lock()

    async def send(self, frame: bytes) -> None:
        if self.ws.closed:
            return
        async with self.send_lock:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_bytes(frame)

    async def run(self) -> None:
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY:
                    continue
                for frame in self.frames.feed(message.data):
                    if not await self.handle(frame):
                        return
        except spdy.ProtocolError as exc:
            log.warning("port-forward to %s ended: %s", self.pod, exc)
        finally:
            for task in self.tasks:
                task.cancel()
            for stream in self.streams.values():
                if stream.writer is not None:
                    stream.writer.close()
            await self.ws.close()

    async def handle(self, frame: spdy.Frame) -> bool:
        if not frame.control:
            self.on_data(frame)
            return True
        if frame.kind == spdy.SYN_STREAM:
            await self.on_syn_stream(frame)
        elif frame.kind == spdy.PING:
            await self.send(spdy.control(spdy.PING, 0, frame.payload))
        elif frame.kind == spdy.RST_STREAM:
            stream = self.streams.get(frame.stream_id)
            if stream is not None and stream.writer is not None:
                stream.writer.close()
        elif frame.kind == spdy.GOAWAY:
            return False
        return True

    async def on_syn_stream(self, frame: spdy.Frame) -> None:
        headers = self.codec.decode(frame.payload[10:])
        await self.send(spdy.syn_reply(frame.stream_id, self.codec.encode({})))
        kind = headers.get("streamtype", "")
        request_id = headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            await self.send(spdy.rst_stream(frame.stream_id))
            return
        stream = _Stream(frame.stream_id, kind, port, request_id)
        stream.remote_closed = bool(frame.flags & spdy.FLAG_FIN)
        self.streams[frame.stream_id] = stream
        pair = self.pairs.setdefault(request_id, {})
        pair[kind] = stream
        if "error" in pair and "data" in pair:
            del self.pairs[request_id]
            task = asyncio.create_task(self.forward(pair["error"], pair["data"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def on_data(self, frame: spdy.Frame) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None or stream.kind != "data":
            return
        if stream.writer is None:
            stream.pending.append(frame.payload)
        elif frame.payload:
            stream.writer.write(frame.payload)
        if frame.flags & spdy.FLAG_FIN:
            stream.remote_closed = True
            if stream.writer is not None and stream.writer.can_write_eof():
                with contextlib.suppress(OSError):
                    stream.writer.write_eof()

    async def forward(self, error: _Stream, data: _Stream) -> None:
        try:
            reader, writer = await _connect(self.host, data.port)
        except (OSError, TimeoutError) as exc:
            message = _dial_error(self.pod, self.host, data.port, exc)
            await self.send(spdy.data(error.stream_id, message.encode()))
            await self.send(spdy.data(error.stream_id, b"", fin=True))
            await self.send(spdy.data(data.stream_id, b"", fin=True))
            return
        data.writer = writer
        for chunk in data.pending:
            writer.write(chunk)
        data.pending.clear()
        if data.remote_closed and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
        try:
            while True:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    break
                await self.send(spdy.data(data.stream_id, chunk))
        except OSError:
            pass
        finally:
            writer.close()
        await self.send(spdy.data(data.stream_id, b"", fin=True))
        await self.send(spdy.data(error.stream_id, b"", fin=True))


# ------------------------------------------------------------------ v4 channels


async def _serve_channels(ws: web.WebSocketResponse, host: str, ports: list[int]) -> None:
    writers: dict[int, asyncio.StreamWriter] = {}
    pumps: list[asyncio.Task[None]] = []
    for index, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await ws.send_bytes(ch.frame(2 * index, prefix))
        try:
            reader, writer = await _connect(host, port)
        except (OSError, TimeoutError) as exc:
            message = _dial_error(host, host, port, exc)
            await ws.send_bytes(ch.frame(2 * index + 1, prefix + message.encode()))
            continue
        await ws.send_bytes(ch.frame(2 * index + 1, prefix))
        writers[index] = writer
        pumps.append(asyncio.create_task(_pump(ws, reader, 2 * index)))
    try:
        async for message in ws:
            if message.type != WSMsgType.BINARY or not message.data:
                continue
            channel, payload = message.data[0], message.data[1:]
            writer = writers.get(channel // 2) if channel % 2 == 0 else None
            if writer is not None and payload:
                writer.write(payload)
                with contextlib.suppress(OSError):
                    await writer.drain()
    finally:
        for pump in pumps:
            pump.cancel()
        for writer in writers.values():
            writer.close()
        await ws.close()


async def _pump(ws: web.WebSocketResponse, reader: asyncio.StreamReader, channel: int) -> None:
    with contextlib.suppress(OSError, ConnectionResetError):
        while True:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                return
            await ws.send_bytes(ch.frame(channel, chunk))
