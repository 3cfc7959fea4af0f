"""A generic Kubernetes simulator: several clusters in one process, each a real HTTP API server.

Nothing in this package imports the rest of Milkyway: it is a Kubernetes look-alike that
real clients (kubectl, lightkube, the official client) use unchanged.
"""
