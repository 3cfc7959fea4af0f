"""``milkyway server``, ``milkyway login|logout`` and ``milkyway audit list|verify``.

``login`` exchanges a user name and password for the server's session token and keeps
it (mode 0600) in the sessions file, ``$MILKYWAY_SESSIONS`` or
``~/.config/milkyway/sessions.json``, and makes that server the default: verbs then act
through it as that proven user without ``--server`` (``--server ''`` talks to the cluster
directly) until ``logout``; elevated by the sudo grant ``$MILKYWAY_SUDO`` names, if set.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from milkyway.model.sudo import HEADER as SUDO_HEADER

server_app = typer.Typer(add_completion=False)
audit_app = typer.Typer(name="audit", help="Search and verify the server's audit trail.")
console = Console()

SESSIONS_ENV = "MILKYWAY_SESSIONS"
CURRENT = "current"
"""The sessions file's key for the server signed in to last (the CLI's default)."""
SUDO_ENV = "MILKYWAY_SUDO"
"""``NAMESPACE/GRANT``: calls through the server use this approved sudo grant."""


def sessions_path() -> Path:
    given = os.environ.get(SESSIONS_ENV)
    if given:
        return Path(given)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "milkyway" / "sessions.json"


def _read_sessions() -> dict[str, Any]:
    path = sessions_path()
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read the sessions file {path}: {exc}") from None


def _write_sessions(sessions: dict[str, Any]) -> Path:
    path = sessions_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sessions-")
    with os.fdopen(fd, "w") as out:  # mkstemp creates the file with mode 0600
        json.dump(sessions, out, indent=2)
    os.replace(tmp, path)
    return path


def default_server() -> str | None:
    """The server of the last ``milkyway login``, while its session is kept."""
    sessions = _read_sessions()
    current = sessions.get(CURRENT)
    return current if isinstance(current, str) and current in sessions else None


def chosen_server(given: str | None) -> str | None:
    """The server a verb goes through: ``--server`` (or ``$MILKYWAY_SERVER``) when given,
    none for ``--server ''``, else the signed-in default."""
    if given is None:
        return default_server()
    return given or None


def server_http(server: str) -> httpx.Client:
    """An HTTP client for ``server`` carrying the stored session (``milkyway login``)."""
    url = server.rstrip("/")
    session = _read_sessions().get(url)
    if session is None:
        raise typer.BadParameter(
            f"not signed in to {url}; run: milkyway login --server {url}", param_hint="--server"
        )
    verify: Any = True
    if session.get("caFile"):
        verify = session["caFile"]
    elif session.get("insecure"):
        verify = False
    headers = {"Authorization": f"Bearer {session['token']}"}
    grant = os.environ.get(SUDO_ENV, "").strip()
    if grant:
        headers[SUDO_HEADER] = grant
    return httpx.Client(
        base_url=url,
        headers=headers,
        verify=verify,
        timeout=60,
        trust_env=False,
    )


def call_server(server: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One API call; a problem answer is printed as one line and exits 1."""
    with server_http(server) as client:
        try:
            response = client.request(method, f"/api/v1{path}", json=body)
        except httpx.HTTPError as exc:
            console.print(f"[red]error:[/red] cannot reach {server}: {exc}")
            raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text}
        console.print(f"[red]error:[/red] {problem.get('detail') or response.reason_phrase}")
        for error in problem.get("errors") or []:
            console.print(f"  {error.get('field')}: {error.get('problem')} ({error.get('fix')})")
        if response.status_code == 401:
            console.print(f"sign in again: milkyway login --server {server}")
        raise typer.Exit(1)
    return dict(response.json())


@server_app.command("login")
def login(
    server: Annotated[str, typer.Option("--server", help="The server's URL, https://HOST:PORT")],
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="User name (default: $USER)")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    method: Annotated[
        str | None, typer.Option("--method", help="ldap or keystone (default: the server's)")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificate to trust for the server.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not check the server's certificate.")
    ] = False,
) -> None:
    """Sign in to a Milkyway server; the session token is kept with mode 0600 and the
    server becomes the default of the commands that can go through it (until logout)."""
    url = server.rstrip("/")
    user = username or os.environ.get("USER") or getpass.getuser()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {user}@{url}: ")
    verify: Any = str(ca_file) if ca_file else not insecure
    body: dict[str, Any] = {"username": user, "password": password}
    if method:
        body["method"] = method
    try:
        response = httpx.post(
            f"{url}/api/v1/login", json=body, verify=verify, timeout=60, trust_env=False
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]error:[/red] cannot reach {url}: {exc}")
        raise typer.Exit(1) from None
    if response.status_code != 200:
        detail = response.json().get("detail", response.text) if response.content else ""
        console.print(f"[red]error:[/red] sign-in refused ({response.status_code}): {detail}")
        raise typer.Exit(1)
    session = response.json()
    sessions = _read_sessions()
    sessions[url] = {
        "token": session["token"],
        "expiresAt": session["expiresAt"],
        "user": session["user"],
        "groups": session["groups"],
        "caFile": str(ca_file.resolve()) if ca_file else "",
        "insecure": insecure,
    }
    sessions[CURRENT] = url
    path = _write_sessions(sessions)
    groups = ", ".join(session["groups"]) or "no groups"
    console.print(f"signed in to {url} as {session['user']} ({groups}); session kept in {path}")
    console.print(
        f"commands now go through {url} (--server '' for the cluster directly; "
        "milkyway logout to stop)"
    )


@server_app.command("logout")
def logout(
    server: Annotated[
        str | None,
        typer.Option("--server", help="The server to sign out of (default: the current one)."),
    ] = None,
) -> None:
    """Forget a server's session (the default server's unless --server); commands talk to
    the cluster directly again."""
    sessions = _read_sessions()
    url = server.rstrip("/") if server else default_server()
    if not url or url not in sessions or url == CURRENT:
        console.print(f"[red]error:[/red] not signed in to {url or 'any server'}")
        raise typer.Exit(1)
    del sessions[url]
    if sessions.get(CURRENT) == url:
        del sessions[CURRENT]
    path = _write_sessions(sessions)
    console.print(
        f"signed out of {url} (session removed from {path}; the token itself stays valid "
        "until it expires)"
    )


@server_app.command("server")
def serve(
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig path.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8443,
    cert: Annotated[Path | None, typer.Option("--cert", help="TLS certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="TLS private key (PEM).")] = None,
    tls_dir: Annotated[
        Path | None,
        typer.Option(help="Where to write the self-signed certificate (default: a new temp dir)."),
    ] = None,
    plain_http: Annotated[
        bool, typer.Option("--plain-http", help="No TLS (only behind a TLS-terminating proxy).")
    ] = False,
    audit_db: Annotated[
        str, typer.Option("--audit-db", help="SQLAlchemy URL of the audit database.")
    ] = "sqlite:///milkyway-audit.db",
    session_secret_file: Annotated[
        Path | None,
        typer.Option(help="File with the session signing secret (shared by all replicas)."),
    ] = None,
    session_ttl: Annotated[float, typer.Option(help="Session lifetime in seconds.")] = 8 * 3600,
    static_tokens_secret: Annotated[
        str, typer.Option(help="NAMESPACE/NAME of a Secret whose tokens.csv lists tokens.")
    ] = "",
    ldap_url: Annotated[str, typer.Option(help="ldap://HOST:PORT of the directory.")] = "",
    ldap_user_base: Annotated[str, typer.Option(help="Where users live.")] = "",
    ldap_group_base: Annotated[str, typer.Option(help="Where groups live.")] = "",
    ldap_bind_dn: Annotated[str, typer.Option(help="Service account for searches.")] = "",
    ldap_bind_password_file: Annotated[
        Path | None, typer.Option(help="File with the service account's password.")
    ] = None,
    ldap_user_filter: Annotated[
        str, typer.Option(help="Users who may sign in.")
    ] = "(objectClass=inetOrgPerson)",
    keystone_url: Annotated[str, typer.Option(help="Keystone v3 URL, .../v3.")] = "",
    keystone_domain: Annotated[str, typer.Option(help="Users' Keystone domain.")] = "Default",
    keystone_project: Annotated[
        str, typer.Option(help="Project to scope sign-ins to (roles become PROJECT:ROLE).")
    ] = "",
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allowed browser origin (repeat); none by default.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=0, help="Serve /metrics and /healthz on this port (0: any).")
    ] = None,
    log_format: Annotated[str, typer.Option(help="text or json (one object a line).")] = "text",
) -> None:
    """Run the REST API server (TLS by default) in front of the management cluster."""
    import uvicorn

    from milkyway.kube.in_cluster import management_kubeconfig
    from milkyway.server import ServerSettings, create_app
    from milkyway.server.authn.keystone import KeystoneSettings
    from milkyway.server.authn.ldap import LdapSettings
    from milkyway.server.tls import self_signed
    from milkyway.telemetry.http import MetricsServer
    from milkyway.telemetry.logs import configure_logging

    secret = session_secret_file.read_bytes().strip() if session_secret_file else None
    ldap = None
    if ldap_url:
        if not ldap_user_base or not ldap_group_base:
            raise typer.BadParameter("--ldap-url needs --ldap-user-base and --ldap-group-base")
        ldap = LdapSettings(
            url=ldap_url,
            user_base=ldap_user_base,
            group_base=ldap_group_base,
            bind_dn=ldap_bind_dn,
            bind_password=(
                ldap_bind_password_file.read_text().strip() if ldap_bind_password_file else ""
            ),
            user_filter=ldap_user_filter,
        )
    keystone = (
        KeystoneSettings(url=keystone_url, user_domain=keystone_domain, project=keystone_project)
        if keystone_url
        else None
    )
    try:
        configure_logging(log_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    source, context = management_kubeconfig(Path(kubeconfig) if kubeconfig else None, context)
    settings = ServerSettings(
        kubeconfig=source,
        context=context,
        audit_url=audit_db,
        session_secret=secret,
        session_ttl_seconds=session_ttl,
        static_tokens_secret=static_tokens_secret,
        ldap=ldap,
        keystone=keystone,
        cors_origins=list(cors_origin or []),
    )
    ssl: dict[str, Any] = {}
    if not plain_http:
        if (cert is None) != (key is None):
            raise typer.BadParameter("give both --cert and --key, or neither")
        if cert is None or key is None:
            folder = tls_dir or Path(tempfile.mkdtemp(prefix="milkyway-server-tls-"))
            cert, key, fingerprint = self_signed(folder, [host, "localhost", "127.0.0.1"])
            console.print(
                f"TLS: self-signed certificate {cert} (SHA-256 {fingerprint}); "
                f"clients: milkyway login --ca-file {cert}"
            )
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if not (ldap or keystone):
        console.print("note: no LDAP or Keystone configured; only bearer tokens can sign in")
    scheme = "http" if plain_http else "https"
    console.print(f"serving on {scheme}://{host}:{port} (API /api/v1, docs /docs)")
    endpoint = None
    if metrics_port is not None:
        endpoint = MetricsServer(host, metrics_port).start()
        console.print(f"metrics on http://{host}:{endpoint.port}/metrics")
    try:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level="info", log_config=None, **ssl
        )
    finally:
        if endpoint is not None:
            endpoint.close()


@audit_app.command("verify")
def verify(
    db: Annotated[str, typer.Option("--db", help="SQLAlchemy URL of the audit database.")],
    expect_head: Annotated[
        str | None, typer.Option(help="A head hash recorded earlier (detects a cut tail).")
    ] = None,
) -> None:
    """Check the hash chain: exit 1 and name each broken row if anything was changed."""
    from milkyway.server.audit import AuditLog

    log = AuditLog(db)
    try:
        findings, head, rows = log.verify()
        known = log.search(limit=1_000_000) if expect_head else []
    finally:
        log.close()
    if expect_head and expect_head != head and expect_head not in {r["hash"] for r in known}:
        console.print(f"[red]the recorded head {expect_head} is no longer in the log[/red]")
        raise typer.Exit(1)
    if findings:
        console.print(f"[red]{len(findings)} problem(s) in {rows} record(s):[/red]")
        for finding in findings:
            console.print(f"row {finding.id}: {finding.problem}")
        raise typer.Exit(1)
    console.print(f"{rows} record(s), chain intact; head {head}")


@audit_app.command("list")
def list_records(
    db: Annotated[str, typer.Option("--db", help="SQLAlchemy URL of the audit database.")],
    actor: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. scale.")] = None,
    decision: Annotated[
        str | None, typer.Option(help="allowed, denied, unauthenticated or error.")
    ] = None,
    request_id: Annotated[str | None, typer.Option(help="Only this request.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 100,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Audit records, oldest first."""
    from milkyway.server.audit import AuditLog

    log = AuditLog(db)
    try:
        rows = log.search(
            actor=actor, action=action, decision=decision, request_id=request_id, limit=limit
        )
    finally:
        log.close()
    if output == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("ID", "AT", "ACTOR", "METHOD", "ACTION", "TARGET", "DECISION", "RESULT", box=None)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["at"],
            row["actor"],
            row["auth_method"],
            row["action"],
            row["target"],
            row["decision"],
            str(row["result"]),
        )
    console.print(table)
