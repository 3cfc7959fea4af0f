"""What the sidecar agent costs and how fast it answers.

Starts a real ``milkyway agent`` process (as a member pod would) next to a small TCP
service it checks, then prints: its RSS and CPU at idle and under 50 requests/s of
``/v1/status``; ``/metrics`` latency; an action's round trip (token signed, verified,
command run) against a plain ``/healthz`` as the baseline; and tailing the last 100 lines
of a 1 GiB log file: latency and the agent's RSS before and after.

Run: .venv/bin/python bench/agent.py [--log-gib 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from milkyway.security.agent_tokens import new_signing_key, pod_audience, sign_action_token


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(ordered)} requests)"


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> float:
    start = time.perf_counter()
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    response.raise_for_status()
    return time.perf_counter() - start


def _cpu_percent(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    return 100 * ((after.user + after.system) - (before.user + before.system)) / seconds


async def _load(client: httpx.AsyncClient, url: str, rate: int, seconds: float) -> list[float]:
    samples: list[float] = []
    interval = 1 / rate
    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_timed(client, "GET", url)))
    samples.extend(await asyncio.gather(*tasks))
    return samples


def _write_log(path: Path, gib: float) -> None:
    line = b"2026-12-07 03:00:00,000 [myid:1] INFO  [main:QuorumPeer] - " + b"x" * 60 + b"\n"
    block = line * (1 << 14)
    with path.open("wb") as handle:
        for _ in range(int(gib * (1 << 30)) // len(block)):
            handle.write(block)


async def main(log_gib: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        service = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = service.sockets[0].getsockname()[1]
        (root / "logs").mkdir()
        log = root / "logs" / "server.log"
        _write_log(log, log_gib)
        spec = {
            "checks": [{"name": "port", "kind": "tcp", "port": port, "periodSeconds": 1}],
            "logs": [{"name": "server", "directory": str(root / "logs")}],
            "actions": [{"name": "echo", "command": ["true"]}],
            "volumes": [{"name": "data", "path": str(root)}],
        }
        (root / "agent.json").write_text(json.dumps(spec))
        key_id, private, public = new_signing_key()
        (root / "keys").mkdir()
        (root / "keys" / f"{key_id}.pub").write_bytes(public)
        env = {**os.environ, "MILKYWAY_POD_NAME": "zk-0", "MILKYWAY_POD_NAMESPACE": "bench"}
        agent_port = 18000 + os.getpid() % 1000
        argv = [
            str(Path(sys.executable).parent / "milkyway"),
            "agent",
            "--config-dir",
            str(root),
            "--keys-dir",
            str(root / "keys"),
            "--listen",
            "127.0.0.1",
            "--port",
            str(agent_port),
            "--log-level",
            "WARNING",
        ]
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{agent_port}"
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                while True:
                    try:
                        await client.get("/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                print(f"start to first answer: {time.perf_counter() - started:.2f} s")
                agent = psutil.Process(process.pid)
                await asyncio.sleep(2)
                idle_cpu = await asyncio.to_thread(_cpu_percent, agent, 10)
                print(
                    f"idle (one check a second): RSS {agent.memory_info().rss / 2**20:.1f} MiB, "
                    f"CPU {idle_cpu:.2f} % of a core"
                )
                cpu_task = asyncio.create_task(asyncio.to_thread(_cpu_percent, agent, 10))
                samples = await _load(client, "/v1/status", 50, 10)
                busy_cpu = await cpu_task
                print(
                    f"50 req/s of /v1/status: RSS {agent.memory_info().rss / 2**20:.1f} MiB, "
                    f"CPU {busy_cpu:.2f} % of a core, {_percentiles(samples)}"
                )
                metrics = [await _timed(client, "GET", "/metrics") for _ in range(200)]
                print(f"/metrics: {_percentiles(metrics)}")
                healthz = [await _timed(client, "GET", "/healthz") for _ in range(200)]
                actions = []
                for _ in range(200):
                    token = sign_action_token(
                        private,
                        key_id,
                        audience=pod_audience("bench", "zk-0"),
                        action="echo",
                        requester="bench",
                    )
                    actions.append(
                        await _timed(
                            client,
                            "POST",
                            "/v1/actions/echo",
                            headers={"X-Milkyway-Action-Token": token},
                        )
                    )
                print(f"baseline GET /healthz: {_percentiles(healthz)}")
                print(f"action round trip (sign, verify, run 'true'): {_percentiles(actions)}")
                before = agent.memory_info().rss
                tails = [
                    await _timed(
                        client, "GET", "/v1/logs", params={"file": "server/server.log", "tail": 100}
                    )
                    for _ in range(20)
                ]
                after = agent.memory_info().rss
                size = log.stat().st_size / 2**30
                print(
                    f"tail 100 lines of a {size:.2f} GiB log: {_percentiles(tails)}; agent RSS "
                    f"{before / 2**20:.1f} -> {after / 2**20:.1f} MiB"
                )
        finally:
            process.terminate()
            await process.wait()
            service.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-gib", type=float, default=1.0)
    asyncio.run(main(parser.parse_args().log_gib))
