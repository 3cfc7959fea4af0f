"""One line instead of a traceback when the Kubernetes API server does not answer.

Every command that talks to a cluster ends up here when the connection fails: the user
learns which server of which context did not answer and what to check, nothing more.
"""

from __future__ import annotations

import sys

from milkyway.kube.clients import context_of_server


def _server(exc: BaseException) -> str | None:
    request = getattr(exc, "_request", None)
    if request is None:
        return None
    url = request.url
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if "refused" in text.lower():
        return "connection refused"
    return text or type(exc).__name__


def unreachable_message(exc: BaseException) -> str:
    """``error: cannot reach …`` naming the context and server, the cause and what to check."""
    server = _server(exc)
    context = context_of_server(server) if server else None
    where = f"the API server {server}" if server else "the Kubernetes API server"
    if context:
        where += f" of context {context!r}"
    return (
        f"error: cannot reach {where} ({_reason(exc)}); check that the cluster is running "
        "(for the demo: `milkyway demo` is still up) and that --kubeconfig/$KUBECONFIG and "
        "--context point at it"
    )


def print_unreachable(exc: BaseException) -> None:
    print(unreachable_message(exc), file=sys.stderr)
