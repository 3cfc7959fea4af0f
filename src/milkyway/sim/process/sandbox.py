"""The command line that starts one container in its own filesystem view.

Each container gets a private mount namespace (``unshare --mount --propagation
private``) and UTS namespace (its hostname is the pod's). Its root is an overlay over
the machine's own root: the machine's programs are there, while what the container
writes to its root stays in its own upper directory. The machine's other mounts
(``/proc``, ``/dev``, ``/sys``...) are bound in, then the pod's volumes at their mount
paths and the pod's hosts file over ``/etc/hosts``. The process then runs chrooted there,
as ``runAsUser``/``runAsGroup`` with ``fsGroup`` as a supplementary group, with exactly
the container's environment, in its working directory. Everything mounted vanishes with
the namespace when the container's last process exits.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    root: Path
    """Where the container's root is assembled (the overlay's mount point)."""
    upper: Path
    work: Path
    hostname: str
    mounts: tuple[Mount, ...]
    argv: tuple[str, ...]
    env: dict[str, str]
    working_dir: str
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    read_only_root: bool = False
    links: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    copies: dict[str, Path] = field(default_factory=dict)
    """Container path -> machine file copied in (readable whatever the user)."""


def host_submounts() -> list[str]:
    """The machine's mount points other than ``/`` that are not inside another one."""
    points: list[str] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return ["/proc", "/sys", "/dev"]
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point != "/":
                points.append(point)
    chosen: list[str] = []
    for point in sorted(set(points), key=len):
        if not any(point == c or point.startswith(c.rstrip("/") + "/") for c in chosen):
            chosen.append(point)
    return chosen


def _mkdirs_like_host(upper: Path, path: str) -> Path:
    """Create ``path``'s directories in ``upper`` with the machine's modes and owners, so
    the merged view keeps them (a sticky ``/tmp`` stays sticky)."""
    current = upper
    host = Path("/")
    for part in Path(path).parts[1:]:
        current = current / part
        host = host / part
        if current.is_dir():
            continue
        current.mkdir(exist_ok=True)
        try:
            st = host.stat()
        except OSError:
            os.chmod(current, 0o755)
            continue
        if stat.S_ISDIR(st.st_mode):
            os.chmod(current, stat.S_IMODE(st.st_mode))
            os.chown(current, st.st_uid, st.st_gid)
    return current


def prepare_upper(spec: SandboxSpec) -> None:
    """Put the image's links and files and the mount points into the overlay's upper."""
    for rel in (spec.upper, spec.work, spec.root):
        rel.mkdir(parents=True, exist_ok=True)
    for target, content in spec.files.items():
        folder = _mkdirs_like_host(spec.upper, str(Path(target).parent))
        path = folder / Path(target).name
        path.write_text(content)
        os.chmod(path, 0o755)
    for target, origin in spec.copies.items():
        folder = _mkdirs_like_host(spec.upper, str(Path(target).parent))
        shutil.copyfile(origin, folder / Path(target).name)
        os.chmod(folder / Path(target).name, 0o755)
    for target, source in spec.links.items():
        folder = _mkdirs_like_host(spec.upper, str(Path(target).parent))
        link = folder / Path(target).name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    for mount in (*spec.mounts, Mount(Path("/"), "/etc/hosts")):
        target = mount.target
        is_file = mount.source.is_file() or target == "/etc/hosts"
        if is_file:
            folder = _mkdirs_like_host(spec.upper, str(Path(target).parent))
            leaf = folder / Path(target).name
            if leaf.is_symlink() or leaf.is_dir():
                continue
            if not leaf.exists() and not Path(target).is_file():
                leaf.touch()
        else:
            _mkdirs_like_host(spec.upper, target)


def setup_script(spec: SandboxSpec, hosts_file: Path) -> str:
    """The shell run inside the new namespaces, ending in ``exec`` of the container."""
    root = shlex.quote(str(spec.root))
    lines = [
        "set -e",
        f"hostname {shlex.quote(spec.hostname[:63])}",
        "mount -t overlay overlay -o "
        + shlex.quote(f"lowerdir=/,upperdir={spec.upper},workdir={spec.work}")
        + f" {root}",
    ]
    for point in host_submounts():
        if point.startswith(str(spec.root)) or str(spec.root).startswith(point + "/"):
            continue
        lines.append(f"mount --rbind {shlex.quote(point)} {root}{shlex.quote(point)}")
    for mount in spec.mounts:
        target = f"{root}{shlex.quote(mount.target)}"
        lines.append(f"mount --bind {shlex.quote(str(mount.source))} {target}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    lines.append(f"mount --bind {shlex.quote(str(hosts_file))} {root}/etc/hosts")
    if spec.read_only_root:
        lines.append(f"mount -o remount,bind,ro {root}")
    run: list[str] = ["chroot", str(spec.root)]
    if spec.uid is not None or spec.gid is not None:
        run += ["setpriv"]
        if spec.uid is not None:
            run += [f"--reuid={spec.uid}"]
        if spec.gid is not None:
            run += [f"--regid={spec.gid}"]
        groups = ",".join(str(g) for g in spec.groups)
        run += [f"--groups={groups}" if groups else "--clear-groups"]
    run += ["env", "-i", "-C", spec.working_dir or "/", "--"]
    run += [f"{k}={v}" for k, v in spec.env.items()]
    run += list(spec.argv)
    # Tell the runtime the container's view is complete (standard input is the write
    # end of a pipe until here), then give the container an empty standard input.
    lines.append("printf ok >&0")
    lines.append("exec " + " ".join(shlex.quote(a) for a in run) + " </dev/null")
    return "\n".join(lines) + "\n"


def launch_argv(spec: SandboxSpec, hosts_file: Path) -> list[str]:
    return [
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "sh",
        "-c",
        setup_script(spec, hosts_file),
    ]


def enter_argv(pid: int) -> list[str]:
    """Run a command in the mount namespace, root and working directory of ``pid``."""
    return ["nsenter", "-t", str(pid), "-m", "-u", "-r", "-w", "--"]
