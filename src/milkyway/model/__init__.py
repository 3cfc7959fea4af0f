"""Milkyway's resource models (Application, Cluster, ComponentType), their validation and
the CRDs generated from them. Pure code: depends on nothing of Milkyway's but itself."""
