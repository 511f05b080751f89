"""Quality tables: import records, editable catalogues and the pharmacists' review trail.

The imported HIS lines themselves are not here: they are Parquet files under
``ONETRIP_ANALYTICS_DIR`` read by DuckDB. A row of :class:`DataImport` names the one file
that currently holds a hospital's month of one dataset; the file becomes current when that
row commits, so an import is all or nothing together with the database transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import conv

from onetrip.db import Base, UTCDateTime, utcnow


class DataImport(Base):
    """The current file of one dataset for one hospital and month (re-import replaces it)."""

    __tablename__ = "quality_import"
    __table_args__ = (
        UniqueConstraint("hospital_id", "kind", "period"),
        CheckConstraint("kind in ('prescriptions','charges')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: The month, ``YYYY-MM``.
    period: Mapped[str] = mapped_column(String(7))
    #: Path of the Parquet file relative to the analytics directory.
    file: Mapped[str] = mapped_column(String(300))
    rows: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(300), default="")
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    imported_by: Mapped[str] = mapped_column(String(100), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: How many times this month has been imported (1 for the first import).
    version: Mapped[int] = mapped_column(Integer, default=1)


class KeyMonitoredDrug(Base):
    """国家重点监控合理用药药品目录: matched to prescription lines by generic name."""

    __tablename__ = "quality_key_drug"

    id: Mapped[int] = mapped_column(primary_key=True)
    generic_name: Mapped[str] = mapped_column(String(100), unique=True)
    catalogue: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DrugDDD(Base):
    """Defined daily dose of an antibacterial product, editable per hospital drug code:
    DDDs on a line = quantity × unit_g / ddd_g."""

    __tablename__ = "quality_drug_ddd"
    __table_args__ = (
        UniqueConstraint("hospital_id", "drug_code"),
        CheckConstraint("ddd_g > 0", name="ddd_positive"),
        CheckConstraint("unit_g > 0", name="unit_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    drug_code: Mapped[str] = mapped_column(String(64))
    generic_name: Mapped[str] = mapped_column(String(100), default="")
    #: WHO ATC/DDD value in grams for the route.
    ddd_g: Mapped[float] = mapped_column(Float)
    #: Grams of active ingredient in one dispensing unit (one tablet, one vial).
    unit_g: Mapped[float] = mapped_column(Float)


class PrescriberPrivilege(Base):
    """The highest antibacterial grade a prescriber may prescribe (抗菌药物处方权)."""

    __tablename__ = "quality_privilege"
    __table_args__ = (
        UniqueConstraint("hospital_id", "prescriber_code"),
        CheckConstraint("max_grade in ('unrestricted','restricted','special')",
                        name="max_grade"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    prescriber_code: Mapped[str] = mapped_column(String(64))
    prescriber_name: Mapped[str] = mapped_column(String(100), default="")
    max_grade: Mapped[str] = mapped_column(String(16))


class Review(Base):
    """A pharmacist's mark on a listed drug (double ten) or a sampled prescription."""

    __tablename__ = "quality_review"
    __table_args__ = (
        # One mark per target and period (PostgreSQL caps identifiers at 63 characters).
        UniqueConstraint("hospital_id", "target", "period", "drug_code", "prescription_id",
                         name=conv("uq_quality_review_mark")),
        CheckConstraint("target in ('drug','prescription')", name="target"),
        CheckConstraint("verdict in ('rational','irrational')", name="verdict"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    target: Mapped[str] = mapped_column(String(16))
    #: The period the mark belongs to: the prescription's month, or the list's period.
    period: Mapped[str] = mapped_column(String(8), index=True)
    #: Empty string when the target is a prescription (keeps the unique key portable).
    drug_code: Mapped[str] = mapped_column(String(64), default="")
    prescription_id: Mapped[str] = mapped_column(String(64), default="")
    generic_name: Mapped[str] = mapped_column(String(100), default="")
    prescriber_code: Mapped[str] = mapped_column(String(64), default="")
    prescriber_name: Mapped[str] = mapped_column(String(100), default="")
    department_name: Mapped[str] = mapped_column(String(100), default="")
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(100), default="")
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
