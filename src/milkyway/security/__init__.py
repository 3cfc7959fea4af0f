"""Security primitives shared by the operator, the CLI and the sidecar agent.

Nothing here imports the rest of Milkyway, so every layer may use it.
"""
