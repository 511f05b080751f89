"""The scheduling clinic (one Monday session, patients, window and doctor principals)."""

from tests.scheduling.conftest import clinic as clinic

__all__ = ["clinic"]
