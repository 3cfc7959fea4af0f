"""A real OpenStack Keystone (identity v3) for the sign-in tests.

``scripts/keystone.sh`` installs Keystone into its own virtual environment once (about
three minutes) under ``$MILKYWAY_KEYSTONE_VENV`` or ``~/.cache/milkyway/keystone``; a
migrated empty database is kept beside it, so a test session only sets up keys, bootstraps
the admin and starts the WSGI app on a free port (a few seconds)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).parents[3]
ADMIN_PASSWORD = "keystone-admin-secret"

SERVE = """
import os, sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from keystone.server.wsgi import initialize_public_application

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

class Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True

port = int(os.environ["MILKYWAY_KEYSTONE_PORT"])
sys.argv = sys.argv[:1]  # oslo.config parses the command line
app = initialize_public_application()
make_server("127.0.0.1", port, app, server_class=Threaded,
            handler_class=Quiet).serve_forever()
"""


@dataclass
class Keystone:
    url: str  # .../v3
    admin_token: str

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = httpx.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"X-Auth-Token": self.admin_token},
            timeout=60,
        )
        if response.status_code >= 300:
            raise AssertionError(
                f"Keystone {method} {path}: {response.status_code} {response.text}"
            )
        return response.json() if response.content else {}


def _venv() -> Path:
    script = ROOT / "scripts" / "keystone.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        pytest.fail(f"installing Keystone failed (scripts/keystone.sh): {result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(venv: Path, conf: Path, *args: str) -> None:
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    result = subprocess.run(
        [str(venv / "bin" / "keystone-manage"), "--config-file", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if result.returncode != 0:
        pytest.fail(f"keystone-manage {args[0]} failed: {result.stderr[-3000:]}")


@contextlib.contextmanager
def running_keystone(folder: Path) -> Iterator[Keystone]:
    venv = _venv()
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v3"
    db = folder / "keystone.db"
    conf = folder / "keystone.conf"
    for name in ("fernet-keys", "receipt-keys", "credential-keys"):
        (folder / name).mkdir()
    conf.write_text(
        f"""[DEFAULT]
log_file = {folder}/keystone.log
[database]
connection = sqlite:///{db}
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = {folder}/fernet-keys
[fernet_receipts]
key_repository = {folder}/receipt-keys
[credential]
key_repository = {folder}/credential-keys
[identity]
domain_specific_drivers_enabled = true
domain_configurations_from_database = true
[cache]
enabled = false
"""
    )
    template = venv / "milkyway-empty-keystone.db"
    if template.exists():
        shutil.copy(template, db)
    else:
        _manage(venv, conf, "db_sync")
        shutil.copy(db, template)
    owner = ["--keystone-user", "root", "--keystone-group", "root"] if os.geteuid() == 0 else []
    _manage(venv, conf, "fernet_setup", *owner)
    _manage(venv, conf, "credential_setup", *owner)
    _manage(
        venv,
        conf,
        "bootstrap",
        "--bootstrap-password",
        ADMIN_PASSWORD,
        "--bootstrap-public-url",
        url,
    )
    env = {
        **os.environ,
        "OS_KEYSTONE_CONFIG_FILES": str(conf),
        "MILKYWAY_KEYSTONE_PORT": str(port),
    }
    process = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", SERVE],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "stderr.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                err = (folder / "stderr.log").read_text(errors="replace")
                pytest.fail(f"Keystone did not start on {url}: {err[-3000:]}")
            time.sleep(0.2)
        auth = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": ADMIN_PASSWORD,
                        }
                    },
                },
                "scope": {"system": {"all": True}},
            }
        }
        response = httpx.post(f"{url}/auth/tokens", json=auth, timeout=60)
        assert response.status_code == 201, response.text
        yield Keystone(url, response.headers["X-Subject-Token"])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
