"""Thin helpers over lightkube: one async client per cluster context, label conventions."""
