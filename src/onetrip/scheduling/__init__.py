"""Scheduling: schedules, minute-precise slots, pools with timers, booking, queue."""
