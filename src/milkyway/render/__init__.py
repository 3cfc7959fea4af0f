"""Pure rendering of a resolved Application into Kubernetes manifests, per zone."""

from milkyway.render.zone import render_application, render_zone

__all__ = ["render_application", "render_zone"]
