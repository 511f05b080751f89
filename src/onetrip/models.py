"""Import every domain's models so that the metadata is complete (Alembic, tests)."""

from __future__ import annotations

import importlib

DOMAINS_WITH_MODELS = ("org", "identity", "scheduling", "quality", "notify", "exams")
#: Tables kept beside the module that uses them rather than in the domain's models.py.
OTHER_MODEL_MODULES = ("onetrip.scheduling.penalties",)


def import_all_models() -> None:
    for domain in DOMAINS_WITH_MODELS:
        importlib.import_module(f"onetrip.{domain}.models")
    for module in OTHER_MODEL_MODULES:
        importlib.import_module(module)
