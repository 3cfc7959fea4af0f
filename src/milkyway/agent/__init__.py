"""The sidecar agent: the process beside the data system in every member pod.

It checks the member's health (its own probes and the data system's own view: ZooKeeper's
``mntr``, etcd's ``/health``), exposes metrics, serves the declared log files, watches its
volumes and runs declared admin actions for holders of an operator-signed token. It has no
Kubernetes credentials: the operator reaches it through the member API server's
``pods/proxy`` and turns what it reports into Events, conditions and flows.
"""
