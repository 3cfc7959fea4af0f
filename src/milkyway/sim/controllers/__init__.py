"""The simulated cluster's control plane: scheduler, kubelets and the built-in controllers.

Each controller is a *pure core* (observed objects in, actions out, unit-tested with
hypothesis) and a thin *shell* (:mod:`.runtime`) that keeps indexes fed by watch events and
applies the actions through the in-process API, so controllers get exactly the semantics
clients get.
"""
