"""The simulated Kubernetes API server: storage, admission, HTTP handlers."""
