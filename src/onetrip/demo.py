"""`onetrip demo`: load the deterministic demo region 示范市 into an empty or demo database.

Each domain contributes a step; the whole load is one transaction. A database that holds
anything other than the demo region is refused, so demo rows never mix with real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import Conflict
from onetrip.exams.demo import load_exams
from onetrip.identity.demo import load_identity
from onetrip.org.demo import load_org
from onetrip.org.demo_data import REGION
from onetrip.org.models import Hospital, Region
from onetrip.quality.demo import load_quality
from onetrip.scheduling.demo import load_scheduling

DEFAULT_SEED = 20261122

#: Later domains append a step: (name, fn(db, region, seed) -> dict of counts).
DemoStep = Callable[[Session, Region, int], dict[str, int]]
STEPS: list[tuple[str, DemoStep]] = [
    ("identity", load_identity), ("scheduling", load_scheduling), ("quality", load_quality),
    ("exams", load_exams),
]


class NotADemoDatabase(Conflict):
    code = "not_a_demo_database"
    message = "数据库中已有非示范数据，拒绝载入示范数据以免混杂；请使用空数据库"


class DemoSeedMismatch(Conflict):
    code = "demo_seed_mismatch"
    message = "示范数据已按另一个种子载入；如需更换种子请先清空数据库"


@dataclass
class DemoResult:
    created: bool
    seed: int
    counts: dict[str, int] = field(default_factory=dict)


def load_demo(db: Session, *, seed: int = DEFAULT_SEED) -> DemoResult:
    """Load the demo region once; a second run with the same seed changes nothing."""
    regions = list(db.scalars(select(Region)))
    foreign = [r for r in regions if not r.is_demo]
    stray = db.scalar(select(func.count(Hospital.id)).join(Region).where(~Region.is_demo))
    if foreign or stray:
        raise NotADemoDatabase(detail={"regions": [r.code for r in foreign]})
    existing = next((r for r in regions if r.code == REGION[0]), None)
    if existing is not None:
        if existing.demo_seed != seed:
            raise DemoSeedMismatch(detail={"loaded_seed": existing.demo_seed, "asked": seed})
        return DemoResult(created=False, seed=seed)
    region = load_org(db, seed)
    counts = {
        "hospitals": len(region.hospitals),
        "departments": sum(len(h.departments) for h in region.hospitals),
    }
    for _name, step in STEPS:
        counts.update(step(db, region, seed))
    db.flush()
    return DemoResult(created=True, seed=seed, counts=counts)
