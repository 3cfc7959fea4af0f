"""Startup, readiness and liveness probes run for real against a container.

``exec`` runs the command inside the container (its filesystem view and environment)
and passes on exit code 0; ``tcpSocket`` passes when a connection to the pod's address
and port opens; ``httpGet`` passes on a status from 200 to 399. Thresholds, periods,
initial delays and timeouts mean what they mean on a kubelet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import aiohttp


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p.get("containerPort", 0))
    raise ValueError(f"port {port!r} is not a port of container {container.get('name')!r}")


async def run_probe(
    probe: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    enter: list[str],
    env: Mapping[str, str],
) -> tuple[bool, str]:
    """One probe attempt: (passed, why not)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        async with asyncio.timeout(timeout):
            if probe.get("exec") is not None:
                return await _exec(probe["exec"].get("command") or [], enter, env)
            if probe.get("tcpSocket") is not None:
                tcp = probe["tcpSocket"]
                port = resolve_port(tcp.get("port"), container)
                host = tcp.get("host") or pod_ip
                _reader, writer = await asyncio.open_connection(host, port)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                return True, ""
            if probe.get("httpGet") is not None:
                return await _http(probe["httpGet"], container, pod_ip)
            if probe.get("grpc") is not None:
                return False, "grpc probes are not supported by the simulated kubelet"
    except TimeoutError:
        return False, f"probe timed out after {timeout:g}s"
    except (OSError, ValueError, aiohttp.ClientError) as err:
        return False, str(err) or type(err).__name__
    return False, "probe has no handler"


async def _exec(command: list[str], enter: list[str], env: Mapping[str, str]) -> tuple[bool, str]:
    if not enter:
        return False, "container is not running"
    process = await asyncio.create_subprocess_exec(
        *enter,
        "env",
        "-i",
        *[f"{k}={v}" for k, v in env.items()],
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode == 0:
        return True, ""
    return False, f"exit code {process.returncode}: {out.decode(errors='replace').strip()[:200]}"


async def _http(
    get: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str
) -> tuple[bool, str]:
    port = resolve_port(get.get("port"), container)
    scheme = str(get.get("scheme") or "HTTP").lower()
    host = get.get("host") or pod_ip
    path = get.get("path") or "/"
    headers = {h.get("name", ""): h.get("value", "") for h in get.get("httpHeaders") or []}
    url = f"{scheme}://{host}:{port}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=False, allow_redirects=False) as response,
    ):
        if 200 <= response.status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {response.status}"
