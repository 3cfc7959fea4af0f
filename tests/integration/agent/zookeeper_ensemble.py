"""A real ZooKeeper ensemble of local processes, each on its own loopback address, for
tests that need the data system itself rather than the simulator's pods."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ZK_SERVER = Path("/usr/share/zookeeper/bin/zkServer.sh")
CLIENT_PORT = 2181


def require_zookeeper() -> None:
    if not ZK_SERVER.exists() or shutil.which("java") is None:
        raise AssertionError(
            "a real ZooKeeper is needed: apt-get install -y zookeeper (make bootstrap does)"
        )


def free_loopback_block(count: int) -> list[str]:
    """``count`` loopback addresses nobody listens on at the ZooKeeper ports."""
    for _ in range(50):
        base = f"127.{random.randint(100, 250)}.{random.randint(0, 250)}"
        addresses = [f"{base}.{index + 1}" for index in range(count)]
        if all(_free(address) for address in addresses):
            return addresses
    raise AssertionError("no free loopback block found")


def _free(address: str) -> bool:
    for port in (CLIENT_PORT, 2888, 3888):
        with socket.socket() as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


@dataclass
class ZooKeeperServer:
    myid: int
    address: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / "out.log").open("ab")
        env = {
            **os.environ,
            "ZOOCFGDIR": str(self.directory),
            "ZOO_LOG_DIR": str(self.directory),
            "JVMFLAGS": "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
        }
        self.process = subprocess.Popen(
            [str(ZK_SERVER), "start-foreground", str(self.directory / "zoo.cfg")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


class ZooKeeperEnsemble:
    def __init__(self, root: Path, size: int, whitelist: str = "*") -> None:
        require_zookeeper()
        addresses = free_loopback_block(size)
        servers = "\n".join(
            f"server.{i + 1}={address}:2888:3888" for i, address in enumerate(addresses)
        )
        self.servers: list[ZooKeeperServer] = []
        for index, address in enumerate(addresses):
            directory = root / f"zk-{index + 1}"
            (directory / "data").mkdir(parents=True)
            (directory / "data" / "myid").write_text(f"{index + 1}\n")
            (directory / "zoo.cfg").write_text(
                f"tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={directory / 'data'}\n"
                f"clientPort={CLIENT_PORT}\nclientPortAddress={address}\n"
                f"4lw.commands.whitelist={whitelist}\nadmin.enableServer=false\n"
                f"{servers}\n"
            )
            self.servers.append(ZooKeeperServer(index + 1, address, directory))

    def __enter__(self) -> ZooKeeperEnsemble:
        for server in self.servers:
            server.start()
        return self

    def __exit__(self, *_: object) -> None:
        for server in self.servers:
            server.kill()


async def wait_serving(address: str, within: float = 120, word: str = "mntr") -> None:
    """Until ``mntr`` (or ``srvr``) at ``address`` names a serving mode."""
    from milkyway.agent.fourletter import parse_mntr, parse_srvr, send_word

    async with asyncio.timeout(within):
        while True:
            try:
                answer = await send_word(address, CLIENT_PORT, word, 2)
                state = (
                    parse_mntr(answer).get("zk_server_state")
                    if word == "mntr"
                    else parse_srvr(answer).get("Mode")
                )
                if state in ("leader", "follower", "standalone"):
                    return
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.5)
