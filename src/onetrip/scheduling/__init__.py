"""Scheduling: schedules, minute-precise slots, pools with timers, booking, queue."""

# Subscribe to other domains' events whenever scheduling is loaded.
from onetrip.scheduling import subscribers as _subscribers  # noqa: F401
