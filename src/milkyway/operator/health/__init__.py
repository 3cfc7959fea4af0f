"""Scheduled health checks: what to read (:mod:`.targets`), how to judge it
(:mod:`.checks`), the task the health-check flow runs (:mod:`.task`) and the schedule
the operator keeps per Application (:mod:`.schedule`)."""
