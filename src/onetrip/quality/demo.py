"""The quality part of the demo: 12 months of prescriptions and charges for the demo
hospitals, deterministic for a seed, with usage skewed towards a few drugs and some
irrational patterns seeded so that the checks find something."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Practitioner, Region
from onetrip.quality import demo_data as data
from onetrip.quality import importing
from onetrip.quality import service as quality_service
from onetrip.quality.models import DataImport, KeyMonitoredDrug, Review
from onetrip.quality.rules import DatasetKind, Verdict, month_range, parse_period

Columns = dict[str, list[Any]]


def _group_of(dept: Department, hospital: Hospital) -> str:
    for fragment, group in data.DEPARTMENT_GROUPS:
        if fragment in dept.name:
            return group
    return "tcm" if hospital.kind == "tcm" else "general"


class _Generator:
    def __init__(self, rng: random.Random, hospital: Hospital,
                 doctors: list[tuple[Practitioner, Department]]) -> None:
        self.rng, self.hospital, self.doctors = rng, hospital, doctors
        self.by_group: dict[str, list[data.Drug]] = defaultdict(list)
        for d in data.DRUGS:
            self.by_group[d.group].append(d)
        self.all_weights = [d.weight for d in data.DRUGS]
        # Two doctors per hospital write big prescriptions and long supplies (seeded issues).
        self.heavy = {p.code for p, _ in rng.sample(doctors, k=min(2, len(doctors)))}
        self.rx: Columns = defaultdict(list)
        self.charges: Columns = defaultdict(list)
        self.flagged: list[dict[str, str]] = []

    def _pick(self, group: str, k: int) -> list[data.Drug]:
        own = self.by_group.get(group, [])
        picked: dict[str, data.Drug] = {}
        while len(picked) < k:
            if own and self.rng.random() < 0.55:
                d = self.rng.choices(own, [x.weight for x in own])[0]
            else:
                d = self.rng.choices(data.DRUGS, self.all_weights)[0]
            picked[d.code] = d
        return list(picked.values())

    def prescription(self, n: int, month_start: datetime) -> None:
        rng = self.rng
        doctor, dept = rng.choice(self.doctors)
        group = _group_of(dept, self.hospital)
        roll = rng.random()
        visit_type = "emergency" if group == "abx" or roll < 0.07 else (
            "inpatient" if roll > 0.84 else "outpatient")
        when = month_start + timedelta(days=rng.randrange(28), minutes=rng.randrange(480, 1080))
        rx_id = f"{self.hospital.code.upper()}{month_start:%y%m}{n:05d}"
        visit = f"V{rx_id}"
        patient = f"P{rng.randrange(10**7):07d}"
        herbal = group == "tcm" and rng.random() < 0.6
        heavy = doctor.code in self.heavy
        long_term = (visit_type == "outpatient" and group in ("cardio", "endo")
                     and rng.random() < 0.15)
        if herbal:
            kind = "herbal"
            herbs = rng.sample(data.HERBS, k=rng.randint(8, 13))
            doses = rng.choice([5, 7, 7, 14])
            lines = [(code, name, "g", "g", price, "", "none", False, False, "oral",
                      float(rng.choice([6, 9, 10, 12, 15, 20, 30]) * doses), doses, False)
                     for code, name, price in herbs]
        else:
            kind = "chinese_patent" if group == "tcm" else "western"
            k = rng.choices([1, 2, 3, 4, 5], [30, 30, 20, 12, 8])[0]
            if heavy and rng.random() < 0.25:
                k = rng.randint(6, 8)
            drugs = self._pick("abx" if visit_type == "emergency" and rng.random() < 0.4
                               else group, k)
            if visit_type == "outpatient" and not long_term:
                drugs = [d for d in drugs if d.grade != "special" or rng.random() < 0.1] or drugs
            lines = []
            for d in drugs:
                days = rng.choice([3, 3, 5, 7, 7]) if visit_type != "emergency" else rng.choice(
                    [1, 2, 3, 3])
                if long_term:
                    days = rng.choice([28, 56, 84, 84, 112 if heavy else 84])
                elif heavy and rng.random() < 0.2:
                    days = rng.choice([10, 14, 30])
                qty = float(max(1, round(days / 7 * rng.choice([1, 1, 2]))) if d.route == "oral"
                            else days * rng.choice([1, 1, 2]))
                lines.append((d.code, d.name, d.spec, d.unit, d.price, d.atc, d.grade, d.vbp,
                              d.essential, d.route, qty, days, d.controlled))
        dept_name = dept.name
        total = 0.0
        for line in lines:
            code, name, spec, unit, price, atc, grade, vbp, essential, route, qty, days, ctl = line
            amount = round(price * qty, 2)
            total += amount
            for key, value in (("prescription_id", rx_id), ("prescribed_at", when),
                               ("department_code", dept.code), ("department_name", dept_name),
                               ("prescriber_code", doctor.code), ("prescriber_name", doctor.name),
                               ("patient_id", patient), ("visit_id", visit),
                               ("visit_type", visit_type), ("prescription_kind", kind),
                               ("diagnoses", ""), ("is_long_term", long_term),
                               ("supply_reason", "慢性病稳定期" if long_term else None),
                               ("drug_code", code), ("generic_name", name),
                               ("specification", spec), ("atc_code", atc or None),
                               ("quantity", qty), ("unit", unit), ("unit_price", price),
                               ("amount", amount), ("days_supply", days), ("route", route),
                               ("antibacterial_grade", grade), ("is_vbp", vbp),
                               ("is_essential", essential), ("is_controlled", ctl)):
                self.rx[key].append(value)
        if heavy and (len(lines) > 5 and kind == "western"):
            self.flagged.append({"rx": rx_id, "code": doctor.code, "name": doctor.name,
                                 "dept": dept_name, "reason": "无正当理由超过5种药品"})
        self._charges(visit, when, dept, visit_type, patient, kind, total, group)

    def _charges(self, visit: str, when: datetime, dept: Department, visit_type: str,
                 patient: str, kind: str, drugs: float, group: str) -> None:
        rng = self.rng
        category = {"western": "drug_western", "chinese_patent": "drug_chinese_patent",
                    "herbal": "drug_herbal"}[kind]
        items: list[tuple[str, float, float | None]] = [(category, drugs, None)]
        if visit_type == "inpatient":
            days = rng.randint(3, 12)
            items += [("bed", days * rng.choice([45.0, 60.0, 80.0]), float(days)),
                      ("nursing", days * 30.0, None),
                      ("lab", rng.uniform(300, 1200), None), ("exam", rng.uniform(200, 1500), None),
                      ("consumable", rng.uniform(100, 2500) * (2 if group == "surgery" else 1),
                       None), ("treatment", rng.uniform(200, 1500), None)]
            if group == "surgery":
                items.append(("surgery", rng.uniform(1500, 6000), None))
        else:
            items.append(("registration", rng.choice([10.0, 15.0, 25.0, 50.0]), None))
            if rng.random() < 0.5:
                items.append(("lab", rng.uniform(20, 300), None))
            if rng.random() < 0.3:
                items.append(("exam", rng.uniform(50, 600), None))
            if rng.random() < 0.3:
                items.append(("consumable", rng.uniform(5, 120), None))
            if rng.random() < 0.3:
                items.append(("treatment", rng.uniform(10, 200), None))
        for category, amount, quantity in items:
            for key, value in (("visit_id", visit), ("charged_on", when.date()),
                               ("department_code", dept.code), ("department_name", dept.name),
                               ("visit_type", visit_type), ("patient_id", patient),
                               ("category", category), ("amount", round(amount, 2)),
                               ("quantity", quantity)):
                self.charges[key].append(value)


def load_quality(db: Session, region: Region, seed: int) -> dict[str, int]:
    """Twelve months of prescriptions and charges for the region's hospitals (not the
    primary-care clinics), the key-monitored catalogue, DDD values, privileges and marks."""
    rng = random.Random(seed * 7 + 9)
    out = {"prescription_lines": 0, "charge_lines": 0, "quality_reviews": 0}
    if db.scalar(select(KeyMonitoredDrug.id).limit(1)) is None:
        for name in data.KEY_MONITORED_2019:
            quality_service.set_key_drug(db, generic_name=name,
                                         catalogue=data.KEY_MONITORED_CATALOGUE)
    base = quality_service.analytics_dir()
    months = month_range(*data.DEMO_MONTHS)
    for hospital in region.hospitals:
        if hospital.level not in data.VOLUME:
            continue
        doctors = [(p, d) for p in org_service.list_practitioners(db, hospital=hospital)
                   for d in p.departments[:1]]
        _catalogues(db, hospital, doctors)
        for i, month in enumerate(months):
            gen = _Generator(rng, hospital, doctors)
            start = datetime.fromisoformat(month + "-01")
            volume = int(data.VOLUME[hospital.level] * (0.85 + 0.3 * i / len(months)))
            for n in range(volume):
                gen.prescription(n, start)
            period = parse_period(month)
            for kind, cols in ((DatasetKind.prescriptions, gen.rx),
                               (DatasetKind.charges, gen.charges)):
                written = importing.write_trusted(cols, kind=kind, hospital_code=hospital.code,
                                                  period=period, analytics_dir=base)
                db.add(DataImport(hospital_id=hospital.id, kind=kind.value, period=month,
                                  file=written.file, rows=written.rows,
                                  source_name="demo", imported_by="onetrip demo"))
            out["prescription_lines"] += len(gen.rx["prescription_id"])
            out["charge_lines"] += len(gen.charges["visit_id"])
            out["quality_reviews"] += _marks(db, hospital, month, gen, rng)
    db.flush()
    return out


def _catalogues(db: Session, hospital: Hospital,
                doctors: list[tuple[Practitioner, Department]]) -> None:
    for d in data.DRUGS:
        if d.ddd_g:
            quality_service.set_ddd(db, hospital=hospital, drug_code=d.code, ddd_g=d.ddd_g,
                                    unit_g=d.unit_g, generic_name=d.name)
    grades = {"chief_physician": "special", "associate_chief_physician": "special",
              "attending_physician": "restricted"}
    for p, _d in doctors:
        if p.title in grades:
            quality_service.set_privilege(db, hospital=hospital, prescriber_code=p.code,
                                          max_grade=grades[p.title], prescriber_name=p.name)


def _marks(db: Session, hospital: Hospital, month: str, gen: _Generator,
           rng: random.Random) -> int:
    """Pharmacists review a sample: the seeded big prescriptions and some ordinary ones."""
    ids = sorted(set(gen.rx["prescription_id"]))
    sample = rng.sample(ids, k=min(25, len(ids)))
    flagged = {f["rx"]: f for f in gen.flagged[:5]}
    ordinary = [rx_id for rx_id in sample if rx_id not in flagged]
    for rx_id in ordinary:
        db.add(Review(hospital_id=hospital.id, target="prescription", period=month,
                      prescription_id=rx_id, verdict=Verdict.rational.value,
                      reviewer="示范药师"))
    for rx_id, f in flagged.items():
        db.add(Review(hospital_id=hospital.id, target="prescription", period=month,
                      prescription_id=rx_id, verdict=Verdict.irrational.value,
                      reason=f["reason"], prescriber_code=f["code"], prescriber_name=f["name"],
                      department_name=f["dept"], reviewer="示范药师"))
    return len(ordinary) + len(flagged)
