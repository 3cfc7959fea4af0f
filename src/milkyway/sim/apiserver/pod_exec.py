"""``pods/exec`` over WebSocket, as kubectl 1.32 and the official clients speak it.

The client upgrades ``GET .../pods/{name}/exec?command=...&stdin=...&stdout=...&stderr=
...&tty=...&container=...`` to a WebSocket with the channel protocol (``v5`` or ``v4``,
see :mod:`channel_protocol`). For a process-backed container the command runs inside the
pod (the runtime's ``enter_argv`` prefix, with the container's environment and working
directory); its output flows back on stdout/stderr and its end as a ``Status`` on the
error channel, with the exit code for a non-zero exit. A simulated container runs no
process: the client gets a ``Status`` saying so on the error channel, as from a node
whose container cannot exec, and nothing else happens.

Clients that cannot upgrade to WebSocket (kubectl then tries SPDY with a POST) get a 400
naming the subprotocols that are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import WSMsgType, web

from milkyway.sim.apiserver import channel_protocol as ch
from milkyway.sim.apiserver import errors

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI
    from milkyway.sim.apiserver.container_runtime import ContainerHandle

READ_CHUNK = 32 * 1024
_TRUE = {"1", "true", "True"}


@dataclass(frozen=True)
class ExecOptions:
    command: list[str]
    container: str | None
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_request(cls, request: web.Request) -> ExecOptions:
        query = request.query
        options = cls(
            command=query.getall("command", []),
            container=query.get("container") or None,
            stdin=query.get("stdin", "") in _TRUE,
            stdout=query.get("stdout", "") in _TRUE,
            stderr=query.get("stderr", "") in _TRUE,
            tty=query.get("tty", "") in _TRUE,
        )
        if not options.command:
            raise errors.bad_request(
                "you must specify at least one command for the container (the command "
                "query parameter, e.g. ?command=sh&command=-c&command=date)"
            )
        if not (options.stdin or options.stdout or options.stderr):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        return options


def require_websocket(request: web.Request) -> str:
    """The channel subprotocol to answer with; 400 when the request cannot get one."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.bad_request(
            "pods/exec is served over WebSocket only (subprotocols "
            f"{', '.join(ch.PROTOCOLS)}); SPDY upgrades are not supported"
        )
    offered = ch.offered(request.headers.get("Sec-WebSocket-Protocol", ""))
    for protocol in offered:
        if protocol in ch.PROTOCOLS:
            return protocol
    raise errors.bad_request(
        f"none of the offered WebSocket subprotocols {offered} is served: use one of "
        f"{', '.join(ch.PROTOCOLS)}"
    )


async def serve_exec(
    request: web.Request, api: ClusterAPI, name: str, namespace: str
) -> web.StreamResponse:
    options = ExecOptions.from_request(request)
    container = api.log_container(name, namespace=namespace, container=options.container)
    protocol = require_websocket(request)
    runtime = api.container_runtime
    handle = runtime.container(namespace, name, container) if runtime is not None else None
    ws = web.WebSocketResponse(protocols=(protocol,), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    try:
        if handle is None:
            await ws.send_bytes(
                ch.encode_status(
                    ch.error_status(
                        f'container "{container}" in pod "{name}" runs no process: it is a '
                        "simulated container, so it cannot exec. Only pods whose images "
                        "the simulator maps to a local command run processes."
                    )
                )
            )
        elif handle.pid is None:
            await ws.send_bytes(
                ch.encode_status(
                    ch.error_status(
                        f'container "{container}" in pod "{name}" is not running: it cannot '
                        "exec until it starts again"
                    )
                )
            )
        else:
            await _run(ws, protocol, handle, options)
    except ConnectionResetError:
        pass
    finally:
        await ws.close()
    return ws


async def _run(
    ws: web.WebSocketResponse, protocol: str, handle: ContainerHandle, options: ExecOptions
) -> None:
    argv = [*handle.enter_argv, *options.command]
    cwd = _working_dir(handle)
    pty_fd: int | None = None
    if options.tty:
        pty_fd, child_fd = os.openpty()
        stdio: dict[str, int] = {"stdin": child_fd, "stdout": child_fd, "stderr": child_fd}
    else:
        child_fd = -1
        stdio = {
            "stdin": asyncio.subprocess.PIPE if options.stdin else asyncio.subprocess.DEVNULL,
            "stdout": asyncio.subprocess.PIPE,
            "stderr": asyncio.subprocess.PIPE,
        }
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=dict(handle.env), cwd=cwd, start_new_session=True, **stdio
        )
    except OSError as exc:
        if pty_fd is not None:
            os.close(pty_fd)
            os.close(child_fd)
        await ws.send_bytes(
            ch.encode_status(
                ch.error_status(
                    f"failed to exec in container: starting {options.command[0]!r}: "
                    f"{exc.strerror or exc}"
                )
            )
        )
        return
    if pty_fd is not None:
        os.close(child_fd)
    pumps = []
    if pty_fd is not None:
        pumps.append(asyncio.create_task(_pump_fd(ws, pty_fd, ch.STDOUT, options.stdout)))
    else:
        assert proc.stdout is not None and proc.stderr is not None
        pumps.append(asyncio.create_task(_pump(ws, proc.stdout, ch.STDOUT, options.stdout)))
        pumps.append(asyncio.create_task(_pump(ws, proc.stderr, ch.STDERR, options.stderr)))
    reader = asyncio.create_task(_read_client(ws, protocol, proc, pty_fd))
    try:
        waiting = asyncio.create_task(proc.wait())
        await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            # The client went away: the command does not outlive its session.
            _kill_group(proc.pid)
            await waiting
            return
        await asyncio.gather(*pumps, return_exceptions=True)
        code = proc.returncode or 0
        status = ch.success_status() if code == 0 else ch.exit_status(options.command, code)
        if code < 0:
            status = ch.exit_status(options.command, 128 - code)
        await ws.send_bytes(ch.encode_status(status))
    finally:
        reader.cancel()
        for pump in pumps:
            pump.cancel()
        if proc.returncode is None:
            _kill_group(proc.pid)
            await proc.wait()
        if pty_fd is not None:
            with contextlib.suppress(OSError):
                os.close(pty_fd)


def _working_dir(handle: ContainerHandle) -> str | None:
    """The container's working directory when it exists where the command starts."""
    wanted = handle.working_dir
    return wanted if wanted and os.path.isdir(wanted) else None


async def _pump(
    ws: web.WebSocketResponse, stream: asyncio.StreamReader, channel: int, wanted: bool
) -> None:
    while True:
        data = await stream.read(READ_CHUNK)
        if not data:
            return
        if wanted and not ws.closed:
            await ws.send_bytes(ch.frame(channel, data))


async def _pump_fd(ws: web.WebSocketResponse, fd: int, channel: int, wanted: bool) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await loop.run_in_executor(None, os.read, fd, READ_CHUNK)
        except OSError:
            return  # EIO: the terminal's last holder exited
        if not data:
            return
        if wanted and not ws.closed:
            await ws.send_bytes(ch.frame(channel, data))


async def _read_client(
    ws: web.WebSocketResponse, protocol: str, proc: asyncio.subprocess.Process, pty_fd: int | None
) -> None:
    """Client messages: stdin data, v5 close signals, terminal resizes. Returns when the
    client closes the connection."""
    async for message in ws:
        if message.type != WSMsgType.BINARY or not message.data:
            continue
        data: bytes = message.data
        channel, payload = data[0], data[1:]
        if channel == ch.STDIN:
            await _write_stdin(proc, pty_fd, payload)
        elif channel == ch.CLOSE and protocol == ch.V5 and payload[:1] == bytes((ch.STDIN,)):
            if pty_fd is not None:
                await _write_stdin(proc, pty_fd, b"\x04")
            elif proc.stdin is not None:
                proc.stdin.close()
        elif channel == ch.RESIZE and pty_fd is not None:
            _resize(pty_fd, payload)


async def _write_stdin(proc: asyncio.subprocess.Process, pty_fd: int | None, data: bytes) -> None:
    if pty_fd is not None:
        with contextlib.suppress(OSError):
            os.write(pty_fd, data)
        return
    if proc.stdin is None or proc.stdin.is_closing():
        return
    proc.stdin.write(data)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        await proc.stdin.drain()


def _resize(fd: int, payload: bytes) -> None:
    try:
        size = orjson.loads(payload)
        width, height = int(size.get("Width", 0)), int(size.get("Height", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
