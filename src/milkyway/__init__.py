"""Milkyway: an operator framework for multi-component, geo-distributed stateful data systems."""

__version__ = "0.1.0"
