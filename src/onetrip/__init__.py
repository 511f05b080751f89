"""OneTrip: the at-most-one-trip (最多跑一次) patient-service platform."""

__version__ = "0.1.0"
