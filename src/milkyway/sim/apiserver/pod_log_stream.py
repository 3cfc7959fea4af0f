"""``GET pods/{name}/log``: a container's log over HTTP, read once or followed.

Simulated containers are read from the cluster's :class:`PodLogs`; a process-backed
container (see :mod:`container_runtime`) from its log files. ``follow=true`` keeps the
response open and sends each line as it is written, until the container stops, the pod
goes or the client disconnects, as ``kubectl logs -f`` expects of a kubelet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.pod_logs import LogLine, LogOptions, read_log_file

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI
    from milkyway.sim.apiserver.container_runtime import ContainerHandle

FILE_POLL_SECONDS = 0.1


class _Limited:
    """Writes rendered lines to the response and stops at ``limitBytes``."""

    def __init__(self, response: web.StreamResponse, options: LogOptions) -> None:
        self.response = response
        self.options = options
        self.left = options.limit_bytes

    @property
    def full(self) -> bool:
        return self.left is not None and self.left <= 0

    async def send(self, lines: list[LogLine]) -> None:
        if not lines or self.full:
            return
        data = b"".join(self.options.render(line) for line in lines)
        if self.left is not None:
            data = data[: self.left]
            self.left -= len(data)
        await self.response.write(data)


async def serve_log(
    request: web.Request, api: ClusterAPI, name: str, namespace: str
) -> web.StreamResponse:
    options = LogOptions.from_query(dict(request.query))
    container = api.log_container(name, namespace=namespace, container=options.container)
    runtime = api.container_runtime
    handle = runtime.container(namespace, name, container) if runtime is not None else None
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    if handle is not None:
        await _serve_file_log(request, response, api, handle, options, namespace, name, container)
    else:
        await _serve_simulated_log(request, response, api, options, name, namespace, container)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _serve_simulated_log(
    request: web.Request,
    response: web.StreamResponse,
    api: ClusterAPI,
    options: LogOptions,
    name: str,
    namespace: str,
    container: str,
) -> None:
    log = api.logs.container(namespace, name, container)
    if options.previous:
        if log is None or log.previous is None:
            raise errors.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        await response.prepare(request)
        await _Limited(response, options).send(options.select(log.previous, api.clock()))
        return
    changed = asyncio.Event()
    unsubscribe = api.logs.subscribe(
        lambda key: changed.set() if key == (namespace, name) else None
    )
    try:
        await response.prepare(request)
        out = _Limited(response, options)
        lines = list(log.current) if log is not None and not log.stopped else []
        seen = log.written if log is not None else 0
        instance = log.instance if log is not None else 0
        await out.send(options.select(lines, api.clock()))
        if not options.follow or (log is not None and log.stopped):
            return
        while not out.full:
            current = api.logs.container(namespace, name, container)
            if current is None:
                if log is not None:
                    return  # the pod is gone
            else:
                log = current
                if log.instance != instance:
                    await out.send(log.ended_since(seen))
                    return
                fresh = log.since(seen)
                seen = log.written
                await out.send(fresh)
            changed.clear()
            await changed.wait()
    except ConnectionResetError:
        return
    finally:
        unsubscribe()


async def _serve_file_log(
    request: web.Request,
    response: web.StreamResponse,
    api: ClusterAPI,
    handle: ContainerHandle,
    options: LogOptions,
    namespace: str,
    name: str,
    container: str,
) -> None:
    if options.previous:
        previous = handle.previous_log_path
        if previous is None or not await asyncio.to_thread(os.path.exists, previous):
            raise errors.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        lines, _ = await asyncio.to_thread(read_log_file, Path(previous))
        await response.prepare(request)
        await _Limited(response, options).send(options.select(lines, api.clock()))
        return
    path = Path(handle.log_path)
    lines, offset = await asyncio.to_thread(read_log_file, path)
    await response.prepare(request)
    out = _Limited(response, options)
    try:
        await out.send(options.select(lines, api.clock()))
        if not options.follow or handle.pid is None:
            return
        runtime = api.container_runtime
        while not out.full:
            await asyncio.sleep(FILE_POLL_SECONDS)
            fresh, offset = await asyncio.to_thread(read_log_file, path, offset)
            await out.send(fresh)
            now = runtime.container(namespace, name, container) if runtime else None
            if now is None or now.pid is None or now.pid != handle.pid or not _alive(now.pid):
                fresh, offset = await asyncio.to_thread(read_log_file, path, offset)
                await out.send(fresh)
                return
    except ConnectionResetError:
        return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
