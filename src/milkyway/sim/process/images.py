"""Which images the simulator runs as real local processes, and how.

An :class:`ImageRule` maps an image pattern (shell-style, matched against the whole image
reference and against it without its registry) to what a container of that image finds:
its entrypoint (used when the pod gives no ``command``), its environment, and the files
its filesystem adds to the machine's own (``links``: a path in the container pointing at
a path on the machine; ``files``: a path with literal content). A pod runs as processes
only when every one of its images matches a rule; otherwise it stays simulated.

Rules come from :func:`builtin_rules` (Debian's ZooKeeper and etcd, the installed
``milkyway`` entry points), from ``--run 'PATTERN=COMMAND'`` (:func:`parse_run`) and
from a YAML file (:func:`load_rules_file`); the first matching rule wins, user rules
before the built-in ones.
"""

from __future__ import annotations

import fnmatch
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ZOOKEEPER_HOME = Path("/usr/share/zookeeper")
ETCD_BINARY = Path("/usr/bin/etcd")

# The official ZooKeeper image lets the environment choose the log directory and sends
# the log to the console; Debian's zkEnv.sh hard-codes both. This one honours the
# environment, so a start script written for the official image runs unchanged.
_ZK_ENV = """\
ZOOMAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain
ZOOCFGDIR=${ZOOCFGDIR:-/etc/zookeeper/conf}
ZOO_LOG_DIR=${ZOO_LOG_DIR:-/tmp}
ZOO_LOG4J_PROP=${ZOO_LOG4J_PROP:-INFO,CONSOLE}
JAVA=${JAVA:-/usr/bin/java}
CLASSPATH="/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
if [ -f /usr/share/java/slf4j-simple.jar ]; then
  CLASSPATH="$CLASSPATH:/usr/share/java/slf4j-simple.jar"
fi
JVMFLAGS="$JVMFLAGS -Dzookeeper.root.logger=$ZOO_LOG4J_PROP"
JVMFLAGS="$JVMFLAGS -Dorg.slf4j.simpleLogger.showDateTime=true"
"""


@dataclass(frozen=True)
class ImageRule:
    """How containers of images matching ``pattern`` run on this machine."""

    pattern: str
    entrypoint: tuple[str, ...] = ()
    """The image's ENTRYPOINT: replaced by the container's ``command``."""
    args: tuple[str, ...] = ()
    """The image's CMD: replaced by the container's ``args``, dropped with a ``command``."""
    env: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    """Container path -> machine path (a symlink in the container's filesystem)."""
    files: Mapping[str, str] = field(default_factory=dict)
    """Container path -> content (a file in the container's filesystem)."""
    requires: tuple[str, ...] = ()
    """Machine paths without which the rule cannot run; named in the failure."""
    root_only: str = ""
    """Why containers of these images keep the runtime's own user instead of their
    ``runAsUser`` on this machine (empty: the user is enforced)."""
    description: str = ""

    def matches(self, image: str) -> bool:
        return fnmatch.fnmatchcase(image, self.pattern) or fnmatch.fnmatchcase(
            strip_registry(image), self.pattern
        )

    def missing(self) -> list[str]:
        return [p for p in self.requires if not Path(p).exists()]


def strip_registry(image: str) -> str:
    """``docker.io/library/zookeeper:3.8.4`` -> ``library/zookeeper:3.8.4`` (no registry)."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return image


def _zookeeper_rules() -> list[ImageRule]:
    bin_dir = ZOOKEEPER_HOME / "bin"
    links = {
        f"/usr/local/bin/{script}": str(bin_dir / script)
        for script in ("zkServer.sh", "zkCli.sh", "zkCleanup.sh")
    }
    common: dict[str, Any] = {
        "args": ("zkServer.sh", "start-foreground"),
        "env": {"ZOO_LOG4J_PROP": "INFO,CONSOLE"},
        "links": links,
        "files": {"/usr/local/bin/zkEnv.sh": _ZK_ENV},
        "requires": (str(bin_dir / "zkServer.sh"), "/usr/share/java/zookeeper.jar"),
        "description": "Debian's zookeeper package (apt-get install zookeeper)",
    }
    return [ImageRule(pattern, **common) for pattern in ("*zookeeper:*", "*zookeeper")]


# All pods share the machine's network stack and etcd (a Go program) ignores the listen
# shim, so the image's etcd narrows wildcard and default listen addresses to the pod's.
_ETCD_WRAPPER = f"""#!/bin/sh
ip="${{MILKYWAY_POD_IP:-}}"
narrow() {{ printf '%s' "$1" | sed "s#0\\.0\\.0\\.0#$ip#g; s#\\[::\\]#$ip#g"; }}
if [ -n "$ip" ]; then
  for v in ETCD_LISTEN_CLIENT_URLS ETCD_LISTEN_PEER_URLS ETCD_LISTEN_METRICS_URLS; do
    eval "val=\\${{$v:-}}"
    if [ -n "$val" ]; then export "$v=$(narrow "$val")"; fi
  done
  case " $* " in *--listen-client-urls*) ;; *)
    : "${{ETCD_LISTEN_CLIENT_URLS:=http://$ip:2379}}"; export ETCD_LISTEN_CLIENT_URLS ;; esac
  case " $* " in *--listen-peer-urls*) ;; *)
    : "${{ETCD_LISTEN_PEER_URLS:=http://$ip:2380}}"; export ETCD_LISTEN_PEER_URLS ;; esac
  n=$#
  while [ "$n" -gt 0 ]; do a=$(narrow "$1"); shift; set -- "$@" "$a"; n=$((n - 1)); done
fi
exec {ETCD_BINARY} "$@"
"""


def _etcd_rules() -> list[ImageRule]:
    common: dict[str, Any] = {
        "args": ("/usr/local/bin/etcd",),
        "files": {"/usr/local/bin/etcd": _ETCD_WRAPPER},
        "requires": (str(ETCD_BINARY),),
        "description": "Debian's etcd-server package (apt-get install etcd-server)",
    }
    return [ImageRule(pattern, **common) for pattern in ("*etcd:*", "*etcd")]


def _milkyway_rules() -> list[ImageRule]:
    bin_dir = Path(sys.executable).parent
    found = shutil.which("milkyway", path=str(bin_dir)) or shutil.which("milkyway")
    scripts = sorted(bin_dir.glob("milkyway*")) if found else []
    links = {f"/usr/local/bin/{s.name}": str(s) for s in scripts}
    common: dict[str, Any] = {
        "root_only": _unreadable_by_others(Path(sys.executable)),
        "links": links,
        "requires": (found or str(bin_dir / "milkyway"),),
        "description": "the installed milkyway entry points",
    }
    agent = ("milkyway/agent:*", "milkyway/agent", "*/milkyway/agent:*", "*/milkyway/agent")
    others = ("milkyway/*", "*/milkyway/*", "milkyway", "milkyway:*", "*/milkyway:*")
    return [
        *(ImageRule(p, entrypoint=("milkyway", "agent"), **common) for p in agent),
        *(ImageRule(p, entrypoint=("milkyway",), **common) for p in others),
    ]


def _unreadable_by_others(program: Path) -> str:
    """Why another user could not run ``program`` here ('' if it could): every folder on
    the way to it, and to the interpreter it links to, must be searchable by others."""
    for path in (program, program.resolve()):
        for folder in path.parents:
            try:
                mode = folder.stat().st_mode
            except OSError:
                continue
            if not mode & 0o001:
                return f"{folder} is not searchable by other users, so {path} runs only as root"
    return ""


def builtin_rules() -> list[ImageRule]:
    """ZooKeeper and etcd images run Debian's servers; ``milkyway/agent`` runs ``milkyway
    agent`` and the project's other images ``milkyway``."""
    return [*_zookeeper_rules(), *_etcd_rules(), *_milkyway_rules()]


def parse_run(spec: str) -> ImageRule:
    """``'PATTERN=COMMAND'`` -> a rule whose entrypoint is COMMAND (split like a shell).

    An empty COMMAND (``'PATTERN='``) runs only containers that give their own command.
    """
    pattern, sep, command = spec.partition("=")
    pattern = pattern.strip()
    if not sep or not pattern:
        raise ValueError(
            f"--run {spec!r}: write IMAGE_PATTERN=COMMAND, e.g. --run 'redis:*=redis-server'"
        )
    try:
        argv = tuple(shlex.split(command))
    except ValueError as err:
        raise ValueError(f"--run {spec!r}: the command does not parse: {err}") from None
    return ImageRule(pattern, entrypoint=argv, description=f"--run {spec}")


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{where}: must map strings to strings")
    return dict(value)


def rules_from_data(data: Any, source: str) -> list[ImageRule]:
    """Rules from a parsed file: ``{images: [{image, command, env, links, files}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(
            f"{source}: expected a mapping with an 'images' list, e.g. "
            "images: [{image: 'redis:*', command: [redis-server]}]"
        )
    rules = []
    for i, item in enumerate(data["images"]):
        where = f"{source}: images[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            raise ValueError(f"{where}.image: give the image pattern as a string")
        unknown = sorted(set(item) - {"image", "command", "env", "links", "files"})
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}")
        command = item.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
            raise ValueError(f"{where}.command: give a list of strings or one command line")
        rules.append(
            ImageRule(
                item["image"],
                entrypoint=tuple(command),
                env=_strings(item.get("env"), f"{where}.env"),
                links=_strings(item.get("links"), f"{where}.links"),
                files=_strings(item.get("files"), f"{where}.files"),
                description=f"{source}: {item['image']}",
            )
        )
    return rules


def load_rules_file(path: str | Path) -> list[ImageRule]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"image rules file {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"image rules file {path}: not YAML: {err}") from None
    return rules_from_data(data, str(path))


class ImageMap:
    """An ordered list of rules; the first rule matching an image decides how it runs."""

    def __init__(self, rules: Iterable[ImageRule] = (), *, builtins: bool = True) -> None:
        self.rules = [*rules, *(builtin_rules() if builtins else [])]

    def rule_for(self, image: str) -> ImageRule | None:
        return next((r for r in self.rules if r.matches(image)), None)

    def runs(self, images: Iterable[str]) -> bool:
        """Whether every image is mapped (a pod runs as processes only then)."""
        images = list(images)
        return bool(images) and all(self.rule_for(i) is not None for i in images)
