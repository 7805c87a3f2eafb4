"""Weekly schedules as operators type them (the site's wall time): the rule lives in
domain.schedule (one rule for the form and the controller's decision); re-exported here for
the console's modules."""

from __future__ import annotations

from domain.schedule import ScheduleError, format_schedule, parse_schedule

__all__ = ["ScheduleError", "format_schedule", "parse_schedule"]
