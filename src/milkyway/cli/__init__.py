"""The ``milkyway`` command line."""
