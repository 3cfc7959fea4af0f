"""Health checks and notifications: time from fault to message, the cost of one health
check, and deliveries per second through SMTP.

1. **Fault to message**: one ZooKeeper Application (one member in each of three zones)
   checked every second and subscribed by email; 20 times, two members are made to
   crash-loop (quorum lost) and the time until the "[Unhealthy]" mail is in the mailbox
   of a real SMTP server (aiosmtpd) is measured; then the fault is lifted and the
   "[Recovered]" mail awaited. The operator runs in its own process.
2. **Cost of a health check** at ``--apps`` Applications (same shape, 3 pods each): the
   health-report flow (what a check with news to tell becomes) is run for every
   Application, one after another, by an engine in this process whose clients count
   their API calls; then every Application is checked quietly, as the operator checks
   when there is nothing to tell (no run); CPU ms per run is this process's
   CPU time (which includes the simulated API servers answering those calls, as they
   live in this process), next to the baseline of the one call every check needs: the
   write of the Application's status. Like the operator, the check reads the Application
   and each zone's pods from informers' caches.
3. **Deliveries per second**: the delivery task sending mail through the SMTP server,
   sequentially and 10 at a time, against the baseline of bare ``aiosmtplib.send``
   calls of the same message.

Run: .venv/bin/python bench/notify.py [--apps 1000] [--faults 20] [--mails 300]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import aiosmtplib
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Pod

from milkyway.flows.dsl import Catalog
from milkyway.flows.engine import Engine
from milkyway.flows.kube_store import KubeStore
from milkyway.flows.tasks import REGISTRY
from milkyway.kube.informer import Informer
from milkyway.kube.member_cache import MemberCache
from milkyway.kube.resources import APPLICATION, CLUSTER, plain
from milkyway.model.load import application_from_data
from milkyway.notify.center import DeliverParams, NotificationCenter
from milkyway.notify.config import CONFIG_MAP
from milkyway.notify.receivers import MailboxServer
from milkyway.notify.services import email_message
from milkyway.notify.templates import render
from milkyway.operator.flows_catalog import operator_flows
from milkyway.operator.health.reads import cached_zone_reader
from milkyway.operator.health.task import HealthChecker
from milkyway.operator.reconciler import component_types, compute_wisb
from milkyway.operator.registry import MemberCluster
from milkyway.sim.controllers.config import ControlPlaneConfig
from operator_common import application, bench_world, percentile, steady_nodes

SYSTEM = "milkyway-system"
NS = "hc"
SUBSCRIBE = "notifications.milkyway.ebay.com/subscribe."


class CountingClient:
    """An AsyncClient that counts the API calls made through it, by verb and kind."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.calls = 0
        self.by_call: Counter[str] = Counter()

    def _count(self, verb: str, args: tuple[Any, ...]) -> None:
        self.calls += 1
        what = args[0] if args else None
        kind = what.__name__ if isinstance(what, type) else type(what).__name__
        self.by_call[f"{verb} {kind}"] += 1

    def reset(self) -> None:
        self.calls = 0
        self.by_call.clear()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name in ("get", "create", "replace", "patch", "delete", "apply"):

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self._count(name, args)
                return await found(*args, **kwargs)

            return counted
        if name == "list":

            def listed(*args: Any, **kwargs: Any) -> Any:
                self._count(name, args)
                return found(*args, **kwargs)

            return listed
        return found


def zk_app(name: str, zones: Mapping[str, str], health: Mapping[str, Any]) -> dict[str, Any]:
    app = application(name, NS, [("zookeeper", "3.8.4", {z: 1 for z in zones})], zones)
    app["spec"]["healthCheck"] = dict(health)
    return app


async def configure(client: AsyncClient, mailbox: MailboxServer) -> None:
    await client.create(
        ConfigMap(
            metadata=ObjectMeta(name=CONFIG_MAP, namespace=SYSTEM),
            data={
                "service.email": f"host: 127.0.0.1\nport: {mailbox.port}\n",
                "rateLimit": "100000/1",
            },
        )
    )


def count(mailbox: MailboxServer, needle: str) -> int:
    return sum(
        1 for p in mailbox.directory.glob("*.eml") if needle in p.read_text(errors="replace")
    )


async def wait_for_mail(mailbox: MailboxServer, needle: str, before: int) -> None:
    """Until a mail containing ``needle`` beyond the ``before`` already there arrives."""
    for _ in range(2400):
        if count(mailbox, needle) > before:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no mail with {needle!r} within 120 s")


async def fault_latency(bench: Any, mailbox: MailboxServer, faults: int) -> list[float]:
    zones = bench.region_of
    probe = zk_app("probe", zones, {"cron": "* * * * * *"})
    probe["metadata"]["annotations"] = {
        f"{SUBSCRIBE}health-unhealthy.email": "oncall@example.com",
        f"{SUBSCRIBE}health-recovered.email": "oncall@example.com",
    }
    await bench.create([probe])
    await bench.wait_ready(NS, 1, 300)
    pods: list[tuple[str, str]] = []
    for member in bench.members[:2]:
        client = bench.client_for(member.name)
        async for pod in client.list(
            Pod, namespace=NS, labels={"milkyway.ebay.com/application": "probe"}
        ):
            pods.append((member.name, pod.metadata.name))
        await client.close()
    samples = []
    for i in range(faults):
        unhealthy = count(mailbox, "[Unhealthy]")
        recovered = count(mailbox, "[Recovered]")
        start = time.monotonic()
        lifted = [
            await bench.control.faults.crash_loop(cluster, pod, namespace=NS)
            for cluster, pod in pods
        ]
        await wait_for_mail(mailbox, "[Unhealthy]", unhealthy)
        samples.append(time.monotonic() - start)
        for fault in lifted:
            await bench.control.faults.lift(fault.id)
        try:
            await wait_for_mail(mailbox, "[Recovered]", recovered)
        except TimeoutError:
            app = await bench.client.get(APPLICATION, "probe", namespace=NS)
            print((app.to_dict().get("status") or {}).get("health"), flush=True)
            raise
        print(f"  fault {i + 1}: {samples[-1]:.2f} s", flush=True)
    return samples


async def check_cost(bench: Any, apps: int, faults_ran: bool) -> dict[str, Any]:
    zones = bench.region_of
    await bench.create([zk_app(f"a{i:04d}", zones, {"enabled": False}) for i in range(apps)])
    probes = 1 if faults_ran else 0
    took = await bench.wait_ready(NS, apps + probes, 7200, report_every=60)
    print(f"  {apps} Applications Ready in {took:.0f} s", flush=True)
    mgmt = CountingClient(bench.client)
    members = {m.name: CountingClient(bench.client_for(m.name)) for m in bench.members}
    clusters = [c.to_dict() async for c in bench.client.list(CLUSTER)]
    types = component_types([])
    objs = [a.to_dict() async for a in bench.client.list(APPLICATION, namespace=NS)]
    wisbs = {
        (NS, o["metadata"]["name"]): compute_wisb(application_from_data(o), types, clusters)
        for o in objs
    }
    # What the check reads, as the operator keeps it: the Applications and each member
    # cluster's pods in informers' caches.
    applications = Informer(
        bench.client, APPLICATION, on_change=lambda event, obj: None, transform=plain, namespace=NS
    )
    caches = {
        name: MemberCache(name, client._client, on_change=lambda cluster, key: None)
        for name, client in members.items()
    }
    watching = [asyncio.create_task(applications.run())]
    for cache in caches.values():
        cache.start()
    await asyncio.wait_for(applications.synced.wait(), 600)
    for cache in caches.values():
        await cache.wait_synced(600)
    registered = {
        name: MemberCluster(name, {}, client=client._client, cache=caches[name], reachable=True)
        for name, client in members.items()
    }
    checker = HealthChecker(
        mgmt,  # type: ignore[arg-type]
        wisbs.get,
        application_of=applications.cache.get,
        read_zone=cached_zone_reader(registered.get),
    )
    registry = REGISTRY.copy()
    checker.register_tasks(registry)
    store = KubeStore(mgmt, NS)
    catalog = Catalog([*operator_flows()])
    names = sorted(k[1] for k in wisbs if k[1].startswith("a"))
    async with Engine(
        store, catalog, registry=registry, clients=members, poll_interval=0.05
    ) as engine:
        await engine.wait(
            await engine.submit(
                "milkyway-health-report", {"application": names[0], "namespace": NS}
            )
        )
        mgmt.reset()
        for client in members.values():
            client.reset()
        cpu, wall = time.process_time(), time.monotonic()
        for name in names:
            run = await engine.submit(
                "milkyway-health-report", {"application": name, "namespace": NS}
            )
            await engine.wait(run, within=120, interval=0.01)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        calls = mgmt.calls + sum(c.calls for c in members.values())
        by_call = sum((c.by_call for c in members.values()), Counter(mgmt.by_call))
    # The scheduled check as the operator makes it when there is nothing to tell: judged
    # from the caches, status.health written, no run.
    await asyncio.sleep(2)  # the cache catches up with the runs' writes
    mgmt.reset()
    for client in members.values():
        client.reset()
    quiet_cpu, quiet_wall, needed_run = time.process_time(), time.monotonic(), 0
    for name in names:
        if not await checker.check_quietly((NS, name)):
            needed_run += 1
    quiet_cpu, quiet_wall = time.process_time() - quiet_cpu, time.monotonic() - quiet_wall
    quiet_calls = mgmt.calls + sum(c.calls for c in members.values())
    # The baseline: what every check must do, nothing else: write the Application's
    # status (here unchanged), from the cached Application.
    await asyncio.sleep(2)  # the cache catches up with the checks' writes
    base_cpu, base_calls = time.process_time(), 0
    for name in names:
        obj = applications.cache[(NS, name)]
        await bench.client.replace(APPLICATION.Status.from_dict(obj), name, namespace=NS)
        base_calls += 1
    base_cpu = time.process_time() - base_cpu
    for task in watching:
        task.cancel()
    for cache in caches.values():
        await cache.stop()
    for client in members.values():
        await client._client.close()
    n = len(names)
    return {
        "apps": n,
        "api_calls_per_run": calls / n,
        "cpu_ms_per_run": cpu / n * 1000,
        "wall_ms_per_run": wall / n * 1000,
        "quiet_api_calls": quiet_calls / n,
        "quiet_cpu_ms": quiet_cpu / n * 1000,
        "quiet_wall_ms": quiet_wall / n * 1000,
        "quiet_needed_run": needed_run,
        "baseline_api_calls": base_calls / n,
        "baseline_cpu_ms": base_cpu / n * 1000,
        "calls": ", ".join(f"{what} {count / n:.2f}" for what, count in by_call.most_common()),
    }


class _Ctx:
    run_id = "bench"

    def heartbeat(self, message: str = "") -> None:
        del message


async def delivery_rate(bench: Any, mailbox: MailboxServer, mails: int) -> dict[str, float]:
    center = NotificationCenter(bench.client, SYSTEM, lambda ns: None)
    variables = {"task": "t", "attempt": 1, "flow": "f", "run": "r", "details": "d", "link": "l"}

    def params(i: int) -> DeliverParams:
        return DeliverParams(
            trigger="task-failed",
            service="email",
            recipients=["oncall@example.com"],
            key=f"bench/{i}",
            subscription="s",
            namespace=NS,
            application="x",
            vars=variables,
        )

    await center.config()
    message = render("task-failed", variables)
    spent = {"task_per_s_x1": 0.0, "task_per_s_x10": 0.0, "baseline_aiosmtplib_per_s": 0.0}
    rounds = 5
    per_round = max(1, mails // rounds)
    serial = iter(range(10**9))
    # Interleaved rounds, so the load of everything else in this process (the simulated
    # clusters, the probe's checks) weighs on the task and the baseline alike.
    for _ in range(rounds):
        for parallel in (1, 10):
            queue = [next(serial) for _ in range(per_round)]

            async def worker(queue: list[int] = queue) -> None:
                while queue:
                    await center.deliver(params(queue.pop()), _Ctx())  # type: ignore[arg-type]

            start = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(parallel)))
            spent[f"task_per_s_x{parallel}"] += time.monotonic() - start
        start = time.monotonic()
        for _ in range(per_round):
            mail = email_message({}, ["oncall@example.com"], message, f"raw/{next(serial)}")
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=mailbox.port)
        spent["baseline_aiosmtplib_per_s"] += time.monotonic() - start
    rates = {name: rounds * per_round / seconds for name, seconds in spent.items()}
    return rates


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--log-dir", type=Path, help="keep the operator's log here")
    args = parser.parse_args()
    logging.getLogger("milkyway.sim").setLevel(logging.CRITICAL)
    config = steady_nodes(ControlPlaneConfig.fast())
    with tempfile.TemporaryDirectory() as tmp:
        keep = args.log_dir / "operator.log" if args.log_dir else None
        async with bench_world(Path(tmp), 3, config=config, nodes=4, keep_log=keep) as bench:
            mailbox = MailboxServer(Path(tmp) / "mailbox")
            await mailbox.start()
            try:
                await configure(bench.client, mailbox)
                if args.faults:
                    print("fault to message (check every 1 s):", flush=True)
                    samples = await fault_latency(bench, mailbox, args.faults)
                    print(
                        f"fault -> Unhealthy mail over {len(samples)} faults: "
                        f"p50 {percentile(samples, 50):.2f} s, "
                        f"p99 {percentile(samples, 99):.2f} s, max {max(samples):.2f} s",
                        flush=True,
                    )
                rates = await delivery_rate(bench, mailbox, args.mails)
                print(
                    "deliveries through SMTP: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()),
                    flush=True,
                )
                print(f"health-check cost at {args.apps} Applications:", flush=True)
                cost = await check_cost(bench, args.apps, bool(args.faults))
                print(
                    f"per run over {cost['apps']:.0f} Applications: "
                    f"{cost['api_calls_per_run']:.1f} API calls, "
                    f"{cost['cpu_ms_per_run']:.1f} CPU ms, {cost['wall_ms_per_run']:.1f} ms wall; "
                    f"baseline status write: {cost['baseline_api_calls']:.1f} API calls, "
                    f"{cost['baseline_cpu_ms']:.1f} CPU ms",
                    flush=True,
                )
                print(f"API calls per run: {cost['calls']}", flush=True)
                print(
                    f"per quiet check (nothing to tell, no run): "
                    f"{cost['quiet_api_calls']:.1f} API calls, {cost['quiet_cpu_ms']:.1f} CPU ms, "
                    f"{cost['quiet_wall_ms']:.1f} ms wall; "
                    f"{cost['quiet_needed_run']} of {cost['apps']} needed a run",
                    flush=True,
                )
            finally:
                await mailbox.stop()


if __name__ == "__main__":
    asyncio.run(main())
