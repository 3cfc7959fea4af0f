"""What the rendered pod promises the sidecar agent: where it finds its declaration and
keys, and where it listens. Imports nothing of Milkyway's, so the agent can read it cheaply."""

import hashlib

AGENT_PORT = 8471
AGENT_CONFIG_FILE = "agent.json"
"""The type's agent declaration in the zone's ConfigMap."""
AGENT_CONFIG_DIR = "/etc/milkyway/config"
AGENT_KEYS_SECRET = "milkyway-agent-keys"
"""Secret of the member namespace holding the operator's public keys (``<key id>.pub``)."""
AGENT_KEYS_DIR = "/etc/milkyway/agent-keys"
AGENT_SIGNING_SECRET = "milkyway-agent-signing"
"""Secret of the member namespace holding the private signing keys (operator and admins)."""
AGENT_TOKEN_HEADER = "X-Milkyway-Action-Token"
"""Header of an action token: the API server's ``pods/proxy`` does not pass the caller's
``Authorization`` on to pods (cluster credentials never reach a pod)."""


def files_hash(files: dict[str, bytes]) -> str:
    """``sha256:…`` of a config or Secret volume's visible files: what the agent reports
    as a version, and what the operator computes from the ConfigMap or Secret it applied,
    so that both name one version the same way."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(files[name])
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


DISK_ALERT_CONDITION = "milkyway.ebay.com/DiskAlert"
"""Pod condition the operator writes from the agent's disk report: ``True`` while a volume
is past its warning threshold (reason ``Warning``, ``Critical`` or ``Failed``), ``False``
with reason ``Ok`` once every volume is below it again."""
