"""``milkyway cluster register``: give the operator access to a member cluster.

With the member cluster's admin kubeconfig it creates, in the member cluster, the
operator's ServiceAccount and the roles of :mod:`milkyway.kube.member_access` (limited to
``--namespace`` when given) and asks for a token; in the management cluster it stores a
kubeconfig with that token in a Secret and applies the ``Cluster``. Running it again
updates the roles and rotates the token.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from lightkube import ApiError, AsyncClient, codecs
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret, ServiceAccountToken

from milkyway.kube import resources as _resources  # noqa: F401  (registers Cluster)
from milkyway.kube.clients import FIELD_MANAGER, KubeconfigError, client_from_kubeconfig
from milkyway.kube.clients import load_kubeconfig as read_kubeconfig
from milkyway.kube.errors import TRANSPORT_ERRORS
from milkyway.kube.member_access import (
    MEMBER_ACCOUNT,
    MEMBER_NAMESPACE,
    member_kubeconfig,
    member_rbac,
)

app = typer.Typer(name="cluster", help="Register member clusters.", no_args_is_help=True)

YEAR = 365 * 24 * 3600


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="The Cluster's name (also its context name).")],
    zone: Annotated[str, typer.Option("--zone", help="The zone this cluster serves.")],
    region: Annotated[str, typer.Option("--region", help="The zone's region.")],
    kubeconfig: Annotated[
        Path, typer.Option("--kubeconfig", help="Admin kubeconfig of the MEMBER cluster.")
    ],
    context: Annotated[
        str | None, typer.Option("--context", help="The member's context in it.")
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace Milkyway may manage in the member (repeat); none: every one.",
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="API server URL the operator uses (default: the kubeconfig's)."),
    ] = None,
    token_seconds: Annotated[
        int, typer.Option(min=600, help="Lifetime of the operator's token in the member.")
    ] = YEAR,
    management_kubeconfig: Annotated[
        Path | None,
        typer.Option(envvar="KUBECONFIG", help="kubeconfig of the management cluster."),
    ] = None,
    management_context: Annotated[
        str | None, typer.Option(help="The management cluster's context.")
    ] = None,
    system_namespace: Annotated[
        str, typer.Option(help="Where the operator runs in the management cluster.")
    ] = MEMBER_NAMESPACE,
) -> None:
    """Create the operator's account and roles in a member cluster; register it."""
    mgmt_path = management_kubeconfig or Path("~/.kube/config").expanduser()
    try:
        member = client_from_kubeconfig(kubeconfig, context)
        member_config = read_kubeconfig(kubeconfig)
        single = member_config.get(context_name=context)
        if single is None:
            raise KubeconfigError(f"{kubeconfig} has no current-context; pass --context")
        ca_data = single.cluster.certificate_auth_data
        if ca_data is None and single.cluster.certificate_auth:
            ca_data = base64.b64encode(Path(single.cluster.certificate_auth).read_bytes()).decode()
        mgmt = client_from_kubeconfig(mgmt_path, management_context)
    except (KubeconfigError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    url = server or single.cluster.server
    try:
        token = asyncio.run(
            _register(
                member,
                mgmt,
                name=name,
                zone=zone,
                region=region,
                namespaces=list(namespace or []),
                server=url,
                ca_data=ca_data,
                insecure=single.cluster.insecure,
                token_seconds=token_seconds,
                system_namespace=system_namespace,
            )
        )
    except ApiError as exc:
        typer.echo(
            f"error: {exc.status.code} {exc.status.message}; the member kubeconfig must be "
            "allowed to create namespaces, service accounts, tokens and RBAC, the management "
            "one to write Secrets and Clusters",
            err=True,
        )
        raise typer.Exit(1) from None
    except TRANSPORT_ERRORS as exc:
        typer.echo(f"error: a cluster does not answer: {exc}", err=True)
        raise typer.Exit(1) from None
    scope = ", ".join(namespace) if namespace else "every namespace"
    typer.echo(
        f"cluster {name} registered (zone {zone}, region {region}): account "
        f"{MEMBER_NAMESPACE}/{MEMBER_ACCOUNT} in the member may manage {scope}; token valid "
        f"{token_seconds // 86400} days ({len(token)} chars), kubeconfig in Secret "
        f"{system_namespace}/{name}-kubeconfig"
    )


async def _register(
    member: AsyncClient,
    mgmt: AsyncClient,
    *,
    name: str,
    zone: str,
    region: str,
    namespaces: list[str],
    server: str,
    ca_data: str | None,
    insecure: bool,
    token_seconds: int,
    system_namespace: str,
) -> str:
    try:
        for doc in member_rbac(namespaces):
            await member.apply(codecs.from_dict(doc), field_manager=FIELD_MANAGER, force=True)
        issued = await member.create(
            ServiceAccountToken(
                metadata=ObjectMeta(name=MEMBER_ACCOUNT, namespace=MEMBER_NAMESPACE),
                spec=TokenRequestSpec(audiences=[], expirationSeconds=token_seconds),
            ),
            MEMBER_ACCOUNT,
            namespace=MEMBER_NAMESPACE,
        )
        token = issued.status.token
        config = member_kubeconfig(name, server, ca_data, token, insecure=insecure)
        secret = Secret(
            metadata=ObjectMeta(
                name=f"{name}-kubeconfig",
                namespace=system_namespace,
                labels={"app.kubernetes.io/part-of": "milkyway", "milkyway.ebay.com/cluster": name},
            ),
            type="Opaque",
            data={"kubeconfig": base64.b64encode(yaml.safe_dump(config).encode()).decode()},
        )
        await mgmt.apply(secret, field_manager=FIELD_MANAGER, force=True)
        cluster: dict[str, Any] = {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {
                "region": region,
                "zone": zone,
                "kubeconfigSecretRef": {
                    "name": f"{name}-kubeconfig",
                    "namespace": system_namespace,
                },
                **({"namespaces": list(dict.fromkeys(namespaces))} if namespaces else {}),
            },
        }
        await mgmt.apply(codecs.from_dict(cluster), field_manager=FIELD_MANAGER, force=True)
        return token
    finally:
        await member.close()
        await mgmt.close()
