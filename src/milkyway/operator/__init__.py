"""The operator: reconcile Applications by comparing WISB with WIRI and running flows."""
