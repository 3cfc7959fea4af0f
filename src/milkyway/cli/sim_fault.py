"""``milkyway sim fault …``: inject and lift faults in a running ``milkyway sim up``.

The running simulator writes ``<kubeconfig>.admin.json`` (its admin endpoint and token);
these commands read it and call that endpoint, so they work from any shell on the
machine that can read the kubeconfig's directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import typer

from milkyway.sim.controllers.admin import admin_file

DEFAULT_KUBECONFIG = Path.home() / ".milkyway" / "sim" / "kubeconfig"

app = typer.Typer(
    help="Inject faults into running simulated clusters (pods, nodes, disks, the API).",
    no_args_is_help=True,
)


def _first_path(value: Path | None) -> Path:
    """``--kubeconfig``, else ``$MILKYWAY_SIM_KUBECONFIG``, else the first file of
    ``$KUBECONFIG`` (the docs have users export it), else the simulator's default."""
    if value is not None:
        return value
    for variable in ("MILKYWAY_SIM_KUBECONFIG", "KUBECONFIG"):
        first = os.environ.get(variable, "").split(os.pathsep)[0]
        if first:
            return Path(first).expanduser()
    return DEFAULT_KUBECONFIG


_kubeconfig_option = typer.Option(
    None,
    "--kubeconfig",
    callback=_first_path,
    help="The kubeconfig written by `milkyway sim up` or `milkyway demo` "
    "(default: $MILKYWAY_SIM_KUBECONFIG, then $KUBECONFIG, then ~/.milkyway/sim/kubeconfig).",
)
_cluster_option = typer.Option(..., "--cluster", "-c", help="Name of the simulated cluster.")
_namespace_option = typer.Option("default", "--namespace", "-n", help="Namespace of the pod.")
_pod_argument = typer.Argument(..., help="Pod name.")
_node_argument = typer.Argument(..., help="Node name.")
_duration_option = typer.Option(
    None, "--duration", help="Lift the fault after this many seconds (default: until lifted)."
)


def _endpoint(kubeconfig: Path) -> tuple[str, str]:
    path = admin_file(kubeconfig)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        typer.echo(
            f"error: {path} not found: start the simulator with `milkyway sim up` "
            "(or pass the --kubeconfig it wrote)",
            err=True,
        )
        raise typer.Exit(2) from None
    return data["url"], data["token"]


def _call(kubeconfig: Path, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url, token = _endpoint(kubeconfig)
    try:
        response = httpx.request(
            method,
            f"{url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )
    except httpx.ConnectError:
        typer.echo(f"error: the simulator at {url} is not running (connection refused)", err=True)
        raise typer.Exit(2) from None
    data = response.json()
    if response.status_code >= 400:
        typer.echo(f"error: {data.get('error', data)}", err=True)
        raise typer.Exit(1)
    return data


def _describe(fault: dict[str, Any]) -> str:
    state = "active" if fault.get("active") else "done"
    params = ", ".join(f"{k}={v}" for k, v in (fault.get("params") or {}).items() if v is not None)
    until = f", lifts after {fault['duration']:g}s" if fault.get("duration") else ""
    extra = f" ({params})" if params else ""
    return (
        f"{fault['id']}  {fault['kind']:<16} {fault['cluster']}/{fault['target']}{extra}  "
        f"[{state}{until}]"
    )


def _inject(kubeconfig: Path, kind: str, cluster: str, **params: Any) -> None:
    body = {"kind": kind, "cluster": cluster, **{k: v for k, v in params.items() if v is not None}}
    typer.echo(_describe(_call(kubeconfig, "POST", "/faults", body)))


@app.command("crash-container")
def crash_container(
    pod: str = _pod_argument,
    cluster: str = _cluster_option,
    namespace: str = _namespace_option,
    container: str | None = typer.Option(None, help="Container (default: all of the pod's)."),
    down_for: float = typer.Option(5.0, help="Seconds the container stays NotReady."),
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Crash a container once: restartCount + 1, NotReady for a while."""
    _inject(
        kubeconfig,
        "crash-container",
        cluster,
        pod=pod,
        namespace=namespace,
        container=container,
        down_for=down_for,
    )


@app.command("crash-loop")
def crash_loop(
    pod: str = _pod_argument,
    cluster: str = _cluster_option,
    namespace: str = _namespace_option,
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Make a pod's containers crash-loop (CrashLoopBackOff) until lifted."""
    _inject(kubeconfig, "crash-loop", cluster, pod=pod, namespace=namespace, duration=duration)


@app.command("kill-pod")
def kill_pod(
    pod: str = _pod_argument,
    cluster: str = _cluster_option,
    namespace: str = _namespace_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Kill a pod at once (no grace period)."""
    _inject(kubeconfig, "kill-pod", cluster, pod=pod, namespace=namespace)


@app.command("lose-node")
def lose_node(
    node: str = _node_argument,
    cluster: str = _cluster_option,
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Lose a node: it stops heartbeating, turns NotReady, and its pods are evicted."""
    _inject(kubeconfig, "lose-node", cluster, node=node, duration=duration)


@app.command("fail-disk")
def fail_disk(
    cluster: str = _cluster_option,
    volume: str | None = typer.Option(None, help="PersistentVolume whose disk fails."),
    node: str | None = typer.Option(None, help="Fail every local PersistentVolume of a node."),
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Fail a disk: the PV turns Failed and the pod on it fails."""
    _inject(kubeconfig, "fail-disk", cluster, volume=volume, node=node, duration=duration)


@app.command("fill-disk")
def fill_disk(
    pod: str = _pod_argument,
    cluster: str = _cluster_option,
    namespace: str = _namespace_option,
    volume: str | None = typer.Option(None, help="The pod's claim volume (default: its only one)."),
    percent: float = typer.Option(95.0, help="How full the volume becomes, in percent."),
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Fill a process-backed pod's volume: a real file is written until it is PERCENT full."""
    _inject(
        kubeconfig,
        "fill-disk",
        cluster,
        pod=pod,
        namespace=namespace,
        volume=volume,
        percent=percent,
        duration=duration,
    )


@app.command("slow-node")
def slow_node(
    node: str = _node_argument,
    cluster: str = _cluster_option,
    factor: float = typer.Option(5.0, help="How many times longer every kubelet stage takes."),
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Make a node slow: every kubelet stage on it takes longer."""
    _inject(kubeconfig, "slow-node", cluster, node=node, factor=factor, duration=duration)


@app.command("cut-off")
def cut_off(
    cluster: str = _cluster_option,
    mode: str = typer.Option(
        "refuse", help="'refuse' (connection refused) or 'unavailable' (503)."
    ),
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Cut a cluster off: its API refuses connections or answers 503."""
    _inject(kubeconfig, "cut-off", cluster, mode=mode, duration=duration)


@app.command("api-latency")
def api_latency(
    seconds: float = typer.Argument(..., help="Added latency per API request, in seconds."),
    cluster: str = _cluster_option,
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Add latency to every API request of a cluster."""
    _inject(kubeconfig, "api-latency", cluster, seconds=seconds, duration=duration)


@app.command("api-errors")
def api_errors(
    rate: float = typer.Argument(..., help="Fraction of API requests that fail, 0..1."),
    cluster: str = _cluster_option,
    code: int = typer.Option(500, help="HTTP status of the failures: 429, 500 or 503."),
    duration: float | None = _duration_option,
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Make a fraction of a cluster's API requests fail."""
    _inject(kubeconfig, "api-errors", cluster, rate=rate, code=code, duration=duration)


@app.command("list")
def list_faults(kubeconfig: Path = _kubeconfig_option) -> None:
    """List injected faults (active and done)."""
    faults = _call(kubeconfig, "GET", "/faults")["faults"]
    if not faults:
        typer.echo("no faults injected")
    for fault in faults:
        typer.echo(_describe(fault))


@app.command("lift")
def lift(
    fault_id: str | None = typer.Argument(None, help="Fault id, as printed when injected."),
    all_: bool = typer.Option(False, "--all", help="Lift every active fault."),
    kubeconfig: Path = _kubeconfig_option,
) -> None:
    """Lift a fault (or all of them): the cluster recovers as it would for real."""
    if (fault_id is None) == (not all_):
        typer.echo("error: give a fault id or --all", err=True)
        raise typer.Exit(2)
    if all_:
        for fault in _call(kubeconfig, "DELETE", "/faults")["faults"]:
            typer.echo(f"lifted {_describe(fault)}")
    else:
        typer.echo(f"lifted {_describe(_call(kubeconfig, 'DELETE', f'/faults/{fault_id}'))}")


if __name__ == "__main__":
    app()
