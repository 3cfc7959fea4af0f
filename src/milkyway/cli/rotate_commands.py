"""``milkyway rotate-secret``: rotate a Secret Milkyway generates for a component, on every
member of every zone, through a durable flow the operator runs under the component's lock
(it survives the operator being killed, and no other flow changes the component meanwhile).
"""

from __future__ import annotations

from typing import Annotated

import typer
from lightkube import AsyncClient

from milkyway.cli.app_commands import (
    CommandError,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    Target,
    _run,
    console,
)
from milkyway.cli.flow import _actor
from milkyway.operator.secret_rotation import RotationRefused, request_rotation

app = typer.Typer()


@app.command("rotate-secret")
def rotate_secret(
    name: Annotated[str, typer.Argument(help="Application name.")],
    component: Annotated[str, typer.Option("--component", "-c", help="Component name.")],
    secret: Annotated[
        str, typer.Option("--secret", help="Secret name, as the type's agent.secrets names it.")
    ],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Rotate a generated Secret: a new value on every member, then the old one retired."""
    target = Target(kubeconfig, context, namespace)
    requester = _actor(None, kubeconfig, context)

    async def work(client: AsyncClient) -> str:
        try:
            run = await request_rotation(
                client, name, target.namespace, component, secret, requested_by=requester
            )
        except RotationRefused as refused:
            raise CommandError(f"{refused}; nothing was changed") from None
        return (
            f"application/{target.namespace}/{name}: rotation of {secret} on {component} "
            f"started as flowrun/{run} (follow it: milkyway flow show {run} -n {target.namespace})"
        )

    console.print(_run(target, work))
