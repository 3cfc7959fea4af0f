"""The agent's checks: one run of a declared check becomes a :class:`CheckResult`.

Typed checks read the data system's own view of itself, which a TCP probe cannot:
a ZooKeeper member that accepts connections but is not serving (``This ZooKeeper instance
is not currently serving requests``) is up for a kubelet and down for its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from milkyway.agent.fourletter import parse_mntr, parse_srvr, send_word
from milkyway.model.agent_spec import AgentCheck

SERVING_MODES = {"leader", "follower", "standalone", "observer"}


@dataclass(frozen=True)
class CheckResult:
    check: str
    ok: bool
    message: str
    observed: dict[str, Any] = field(default_factory=dict)
    """Values the check read (mode, followers, latency, …)."""
    duration_seconds: float = 0.0


async def run_check(check: AgentCheck, host: str) -> CheckResult:
    """Run ``check`` once against the data system at ``host``; never raises."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout_seconds):
            ok, message, observed = await _RUNNERS[check.kind](check, host)
    except TimeoutError:
        ok, message, observed = False, f"no answer within {check.timeout_seconds:g} s", {}
    except OSError as error:
        ok, message, observed = False, f"{type(error).__name__}: {error}", {}
    except aiohttp.ClientError as error:
        ok, message, observed = False, f"{type(error).__name__}: {error}", {}
    return CheckResult(check.name, ok, message, observed, time.perf_counter() - started)


async def _tcp(check: AgentCheck, host: str) -> tuple[bool, str, dict[str, Any]]:
    assert check.port is not None
    _reader, writer = await asyncio.open_connection(host, check.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, f"{host}:{check.port} accepts connections", {}


async def _http(check: AgentCheck, host: str) -> tuple[bool, str, dict[str, Any]]:
    url = f"http://{host}:{check.port}{check.path}"
    timeout = aiohttp.ClientTimeout(total=check.timeout_seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        status = response.status
    ok = 200 <= status < 400
    return ok, f"GET {check.path} answered {status}", {"status": status}


async def _exec(check: AgentCheck, _host: str) -> tuple[bool, str, dict[str, Any]]:
    assert check.command is not None
    process = await asyncio.create_subprocess_exec(
        *check.command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    tail = output.decode(errors="replace").strip()[-200:]
    code = process.returncode
    return code == 0, f"exit {code}" + (f": {tail}" if tail else ""), {"exitCode": code}


async def _zookeeper(check: AgentCheck, host: str) -> tuple[bool, str, dict[str, Any]]:
    """``srvr`` (allowed by every ZooKeeper's default whitelist) gives the mode; ``ruok``
    and ``mntr`` add to it where the server's ``4lw.commands.whitelist`` allows them."""
    assert check.port is not None
    limit = check.timeout_seconds
    srvr_text = await send_word(host, check.port, "srvr", limit)
    if _not_whitelisted(srvr_text):
        return False, "srvr is not in 4lw.commands.whitelist; add srvr to read the mode", {}
    srvr = parse_srvr(srvr_text)
    observed: dict[str, Any] = {"mode": srvr.get("Mode", "")}
    if "Outstanding" in srvr:
        observed["outstandingRequests"] = int(srvr["Outstanding"])
    latency = srvr.get("Latency min/avg/max")
    if latency:
        observed["latency"] = latency
    ruok = (await send_word(host, check.port, "ruok", limit)).strip()
    if not _not_whitelisted(ruok) and ruok != "imok":
        return False, f"ruok answered {ruok!r}", {**observed, "ruok": ruok}
    mntr_text = await send_word(host, check.port, "mntr", limit)
    if _not_whitelisted(mntr_text):
        observed["mntr"] = {}
    else:
        mntr = parse_mntr(mntr_text)
        observed["mntr"] = mntr
        observed["mode"] = mntr.get("zk_server_state") or observed["mode"]
        followers = mntr.get("zk_followers", mntr.get("zk_synced_followers"))
        if followers is not None:
            observed["followers"] = int(followers)
        if "zk_synced_followers" in mntr:
            observed["syncedFollowers"] = int(mntr["zk_synced_followers"])
    mode = observed["mode"]
    if mode not in SERVING_MODES:
        served = srvr_text.strip().splitlines()[0] if srvr_text.strip() else "no answer"
        return False, f"not serving requests (mode {mode or 'unknown'}): {served}", observed
    return True, f"serving as {mode}", observed


def _not_whitelisted(answer: str) -> bool:
    return "is not executed because it is not in the whitelist" in answer


async def _etcd(check: AgentCheck, host: str) -> tuple[bool, str, dict[str, Any]]:
    base = f"http://{host}:{check.port}"
    timeout = aiohttp.ClientTimeout(total=check.timeout_seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"{base}/health") as health:
            status = health.status
            body = await _json_object(health)
        async with session.post(f"{base}/v3/cluster/member/list", json={}) as listing:
            members = await _json_object(listing) if listing.status == 200 else None
    healthy = status == 200 and str(body.get("health")) == "true"
    observed: dict[str, Any] = {"health": body.get("health")}
    if members is not None:
        observed["members"] = len(members.get("members", []))
    if not healthy:
        return False, f"/health answered {status} {body}", observed
    return True, f"healthy, {observed.get('members', '?')} members", observed


async def _json_object(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_RUNNERS = {
    "tcp": _tcp,
    "http": _http,
    "exec": _exec,
    "zookeeper": _zookeeper,
    "etcd": _etcd,
}
