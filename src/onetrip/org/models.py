"""Organisation tables: who offers care, where, and on which days."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from onetrip.db import Base, UTCDateTime, utcnow


class Region(Base):
    __tablename__ = "region"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The province (省) the region belongs to, for addresses (FHIR Location ``state``).
    province: Mapped[str] = mapped_column(String(40), default="")
    #: Set on rows created by `onetrip demo` so that it never mixes with real data.
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    demo_seed: Mapped[int | None] = mapped_column(Integer)

    hospitals: Mapped[list[Hospital]] = relationship(back_populates="region",
                                                     order_by="Hospital.id")


class MedicalAlliance(Base):
    """医联体/医共体: hospitals and primary-care clinics that share slots and referrals."""

    __tablename__ = "medical_alliance"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Hospital(Base):
    __tablename__ = "hospital"
    __table_args__ = (
        CheckConstraint("level in ('primary','secondary','tertiary')", name="level"),
        CheckConstraint(
            "kind in ('general','specialist','tcm','primary_care')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("medical_alliance.id"))
    is_alliance_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    introduction: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(6), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    #: ISO weekdays (1=Monday) on which outpatient clinics normally run.
    clinic_weekdays: Mapped[list[int]] = mapped_column(JSON, default=lambda: [1, 2, 3, 4, 5])
    #: Whether clinics also run on statutory holidays (many tertiary hospitals keep some open).
    holiday_clinics: Mapped[bool] = mapped_column(Boolean, default=False)
    search_keys: Mapped[str] = mapped_column(String(500), default="")

    region: Mapped[Region] = relationship(back_populates="hospitals")
    alliance: Mapped[MedicalAlliance | None] = relationship()
    departments: Mapped[list[Department]] = relationship(back_populates="hospital",
                                                         order_by="Department.sort_order")


class ServiceLevelFee(Base):
    """The registration fee of a service level (普通/专科/专家/特需) at one hospital."""

    __tablename__ = "service_level_fee"
    __table_args__ = (
        UniqueConstraint("hospital_id", "service_level"),
        CheckConstraint(
            "service_level in ('general','specialist','expert','special_needs')",
            name="service_level",
        ),
        CheckConstraint("fee >= 0", name="fee_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    service_level: Mapped[str] = mapped_column(String(16))
    fee: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class Location(Base):
    """A place in a hospital: campus → building → floor → room (a tree)."""

    __tablename__ = "location"
    __table_args__ = (
        CheckConstraint("kind in ('campus','building','floor','room')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))

    parent: Mapped[Location | None] = relationship(remote_side="Location.id")


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("hospital_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    #: Common short names patients type, e.g. 心内科 for 心血管内科.
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    introduction: Mapped[str] = mapped_column(Text, default="")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    #: False for groupings such as 内科 that hold sub-departments but run no clinic.
    is_clinical: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    search_keys: Mapped[str] = mapped_column(String(500), default="")

    hospital: Mapped[Hospital] = relationship(back_populates="departments")
    parent: Mapped[Department | None] = relationship(remote_side="Department.id",
                                                     back_populates="children")
    children: Mapped[list[Department]] = relationship(back_populates="parent",
                                                      order_by="Department.sort_order")
    location: Mapped[Location | None] = relationship()
    practitioners: Mapped[list[Practitioner]] = relationship(
        secondary="practitioner_department", back_populates="departments",
        order_by="Practitioner.id",
    )


practitioner_department = Table(
    "practitioner_department",
    Base.metadata,
    Column("practitioner_id", ForeignKey("practitioner.id", ondelete="CASCADE"),
           primary_key=True),
    Column("department_id", ForeignKey("department.id", ondelete="CASCADE"), primary_key=True),
)


class Practitioner(Base):
    __tablename__ = "practitioner"
    __table_args__ = (
        UniqueConstraint("hospital_id", "code"),
        CheckConstraint(
            "title in ('chief_physician','associate_chief_physician',"
            "'attending_physician','resident_physician')",
            name="title",
        ),
        CheckConstraint(
            "service_level in ('general','specialist','expert','special_needs')",
            name="service_level",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(8), default="")
    title: Mapped[str] = mapped_column(String(32))
    #: The service level this practitioner's clinics run at by default.
    service_level: Mapped[str] = mapped_column(String(16), default="general")
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    introduction: Mapped[str] = mapped_column(Text, default="")
    search_keys: Mapped[str] = mapped_column(String(500), default="")

    departments: Mapped[list[Department]] = relationship(
        secondary="practitioner_department", back_populates="practitioners"
    )


class CalendarOverride(Base):
    """A region's or a hospital's own ruling on one date, above the statutory calendar."""

    __tablename__ = "calendar_override"
    __table_args__ = (
        UniqueConstraint("region_id", "day"),
        UniqueConstraint("hospital_id", "day"),
        CheckConstraint(
            "(region_id IS NULL) <> (hospital_id IS NULL)", name="one_scope"
        ),
        CheckConstraint("kind in ('holiday','workday','closed','open')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    hospital_id: Mapped[int | None] = mapped_column(ForeignKey("hospital.id"))
    day: Mapped[date] = mapped_column(Date, index=True)
    #: holiday/workday follow the official calendar (a hospital keeping holiday clinics
    #: stays open on a holiday); closed/open are absolute.
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
