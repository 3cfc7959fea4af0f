"""SPDY/3.1 framing, the part of it kubectl's port-forward uses.

kubectl 1.32 tunnels SPDY inside a WebSocket for ``pods/portforward``
(subprotocol ``SPDY/3.1+portforward.k8s.io``): control frames open, answer and reset
streams and carry pings; data frames carry bytes, with a FIN flag for a half-close.
Header blocks are zlib streams primed with SPDY/3's fixed dictionary; that dictionary is
read from the kubectl binary (whose SPDY library carries it), like the protobuf schemas,
so the simulator ships no protocol tables of its own. Flow control (WINDOW_UPDATE) is
not enforced, as kubectl's SPDY library does not enforce it either.
"""

from __future__ import annotations

import shutil
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

VERSION = 3
SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9
FLAG_FIN = 0x01
RST_CANCEL = 5
MAX_DATA = 0xFFFFFF

_DICTIONARY_START = b"\x00\x00\x00\x07options\x00\x00\x00\x04head"
_DICTIONARY_END = b"enq=0."
_lock = threading.Lock()
_dictionary: bytes | None = None


class SpdyUnavailable(Exception):
    """No kubectl to read the SPDY header dictionary from; the message says what to do."""


class ProtocolError(Exception):
    pass


def header_dictionary() -> bytes:
    global _dictionary
    with _lock:
        if _dictionary is None:
            _dictionary = _read_dictionary()
        return _dictionary


def _read_dictionary() -> bytes:
    binary = shutil.which("kubectl")
    if binary is None:
        raise SpdyUnavailable(
            "port-forward speaks SPDY, whose header dictionary the simulator reads from "
            "kubectl, and no kubectl is on the simulator's PATH: install kubectl 1.32 "
            "(Debian: kubernetes-client)"
        )
    data = Path(binary).read_bytes()
    start = data.find(_DICTIONARY_START)
    end = data.find(_DICTIONARY_END, start) if start >= 0 else -1
    if start < 0 or end < 0:
        raise SpdyUnavailable(f"{binary} carries no SPDY/3 header dictionary")
    return data[start : end + len(_DICTIONARY_END)]


@dataclass(frozen=True)
class Frame:
    control: bool
    kind: int  # control frame type; 0 for data
    stream_id: int
    flags: int
    payload: bytes


class FrameReader:
    """Splits a byte stream into frames (WebSocket messages need not align with them)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head = bytes(self._buffer[:8])
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = head[4]
            if head[0] & 0x80:
                version = struct.unpack(">H", head[:2])[0] & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version} is not served (only 3)")
                kind = struct.unpack(">H", head[2:4])[0]
                stream_id = 0
                if kind in (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE):
                    stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                frames.append(Frame(True, kind, stream_id, flags, payload))
            else:
                stream_id = struct.unpack(">I", head[:4])[0] & 0x7FFFFFFF
                frames.append(Frame(False, 0, stream_id, flags, payload))
        return frames


class HeaderCodec:
    """The two zlib streams of one connection: the peer's header blocks and ours."""

    def __init__(self, dictionary: bytes) -> None:
        self._inflater = zlib.decompressobj(zdict=dictionary)
        self._deflater = zlib.compressobj(zdict=dictionary)

    def decode(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflater.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"SPDY header block does not decompress: {exc}") from None
        if not raw and block and self._inflater.unused_data:
            raise ProtocolError("SPDY header block is not a zlib stream")
        headers: dict[str, str] = {}
        count, at = struct.unpack(">I", raw[:4])[0], 4
        for _ in range(count):
            size = struct.unpack(">I", raw[at : at + 4])[0]
            name = raw[at + 4 : at + 4 + size].decode()
            at += 4 + size
            size = struct.unpack(">I", raw[at : at + 4])[0]
            value = raw[at + 4 : at + 4 + size].decode()
            at += 4 + size
            headers[name.lower()] = value.split("\x00", 1)[0]
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = bytearray(struct.pack(">I", len(headers)))
        for name, value in headers.items():
            for part in (name.lower().encode(), value.encode()):
                raw += struct.pack(">I", len(part)) + part
        return self._deflater.compress(bytes(raw)) + self._deflater.flush(zlib.Z_SYNC_FLUSH)


def control(kind: int, flags: int, payload: bytes) -> bytes:
    head = struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload))
    return head + payload


def data(stream_id: int, payload: bytes, *, fin: bool = False) -> bytes:
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


def syn_reply(stream_id: int, header_block: bytes) -> bytes:
    return control(SYN_REPLY, 0, struct.pack(">I", stream_id) + header_block)


def rst_stream(stream_id: int, status: int = RST_CANCEL) -> bytes:
    return control(RST_STREAM, 0, struct.pack(">II", stream_id, status))
