"""The wildcard-listen shim loaded into every process of a process-backed pod.

All pods share the machine's network stack, so two servers listening on ``0.0.0.0:2181``
would clash even though each pod has its own address. The shim (a tiny C library loaded
with ``LD_PRELOAD``) turns a listen on the wildcard address into a listen on the pod's
address. Statically linked programs (Go's, such as etcd) bypass it; their image rules
narrow wildcard listen addresses before the program starts.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

SOURCE = r"""
/* Loaded into every process of a simulated pod (LD_PRELOAD): a listen on the wildcard
 * address becomes a listen on the pod's own address (MILKYWAY_POD_IP), because all pods
 * share the machine's network stack and two wildcard listens on one port would clash. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind = NULL;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *ip = getenv("MILKYWAY_POD_IP");
    struct in_addr pod;
    if (!ip || !addr || inet_pton(AF_INET, ip, &pod) != 1) return real_bind(fd, addr, len);
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in copy;
        memcpy(&copy, addr, sizeof copy);
        if (copy.sin_addr.s_addr == htonl(INADDR_ANY)) {
            copy.sin_addr = pod;
            return real_bind(fd, (struct sockaddr *)&copy, sizeof copy);
        }
    } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 copy;
        memcpy(&copy, addr, sizeof copy);
        if (memcmp(&copy.sin6_addr, &in6addr_any, sizeof(struct in6_addr)) == 0) {
            memset(&copy.sin6_addr, 0, sizeof(struct in6_addr));
            copy.sin6_addr.s6_addr[10] = 0xff;
            copy.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&copy.sin6_addr.s6_addr[12], &pod, 4);
            return real_bind(fd, (struct sockaddr *)&copy, sizeof copy);
        }
    }
    return real_bind(fd, addr, len);
}
"""

POD_IP_VARIABLE = "MILKYWAY_POD_IP"


class PreloadError(RuntimeError):
    """The shim cannot be built (no C compiler)."""


def build(folder: Path) -> Path:
    """Compile the shim into ``folder`` (once per source version) and return its path."""
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:12]
    target = folder / f"bindpod-{digest}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        source = Path(tmp) / "bindpod.c"
        source.write_text(SOURCE)
        out = Path(tmp) / "bindpod.so"
        try:
            subprocess.run(
                ["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(source), "-ldl"],
                check=True,
                capture_output=True,
                text=True,
            )
        except FileNotFoundError:
            raise PreloadError(
                "no C compiler: install gcc (apt-get install -y gcc) to run pods as processes"
            ) from None
        except subprocess.CalledProcessError as err:
            raise PreloadError(f"building the listen shim failed: {err.stderr.strip()}") from None
        out.replace(target)
    return target
