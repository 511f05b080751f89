"""Notify: full-process reminders (RM-1, RM-2) through an outbox written with the change.

Its event subscribers (``subscribers``) queue the messages of the bookings a transaction
commits; ``onetrip.events`` loads them in every process before it dispatches events, whether
or not the process imported this package.
"""

from onetrip.notify import subscribers as subscribers
