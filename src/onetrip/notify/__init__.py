"""Notify: full-process reminders (RM-1, RM-2) through an outbox written with the change.

Importing the package registers the event subscribers (``subscribers``), so any process that
imports ``onetrip.notify`` (the app, the CLI, Alembic's ``import_all_models``) queues messages
for the bookings it commits.
"""

from onetrip.notify import subscribers as subscribers
