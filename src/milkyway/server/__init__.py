"""``milkyway server``: the REST front door to the management cluster.

Stateless: every request is authenticated (LDAP, Keystone, static tokens, server-signed
sessions), then carried out on the management cluster *as the caller* through Kubernetes
impersonation, so the cluster's RBAC decides, and recorded in a hash-chained audit log.
"""

from milkyway.server.app import create_app
from milkyway.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
