"""Search parameters (dates with prefixes, references, tokens, paging) and Bundles.

Dates without a zone are read in the hospital's zone (Asia/Shanghai by default); a date
without a time means the whole local day, as FHIR's precision rules say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_
from sqlalchemy.sql.elements import ColumnElement

from onetrip.config import get_settings
from onetrip.fhir.outcome import InvalidSearch, UnknownResource
from onetrip.numbers import parse_digits, parse_id

DEFAULT_COUNT = 20
MAX_COUNT = 200
#: The years a date parameter may name: the calendar's ends overflow date arithmetic.
YEARS = range(1900, 2201)
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


def resource_id(ident: str) -> int:
    """The row id in a resource id; raises UnknownResource for one no row can have."""
    value = parse_id(ident)
    if value is None:
        raise UnknownResource(detail={"id": ident})
    return value


def check_year(year: int, name: str) -> None:
    """Raise InvalidSearch unless ``year`` is in YEARS."""
    if year not in YEARS:
        raise InvalidSearch(f"参数{name}的年份应在{YEARS[0]}至{YEARS[-1]}之间",
                            detail=[{"field": name}])


def instant(value: datetime) -> str:
    """An aware datetime as a FHIR instant in the hospital's zone: 2026-12-14T08:00:00+08:00."""
    return value.astimezone(get_settings().tz).isoformat(timespec="seconds")


def parse_instant(raw: str, name: str) -> tuple[datetime, datetime]:
    """The interval [start, end) a FHIR date or dateTime value stands for."""
    tz = get_settings().tz
    raw = raw.strip().replace(" ", "+")  # an unencoded "+08:00" in a URL arrives as " 08:00"
    try:
        moment, length = _moment(raw)
    except ValueError as exc:
        raise InvalidSearch(f"参数{name}的时间格式有误，应为 YYYY-MM-DD 或 ISO 8601",
                            detail=[{"field": name}]) from exc
    check_year(moment.year, name)  # before any arithmetic: 9999-12-31 + 1 day overflows
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment, moment + length


def _moment(raw: str) -> tuple[datetime, timedelta]:
    """A date's midnight and a day, or a dateTime and a second; raises ValueError."""
    if "T" in raw:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")), timedelta(seconds=1)
    return datetime.combine(date.fromisoformat(raw), time(0)), timedelta(days=1)


def date_condition(column: Any, raw: str, name: str) -> ColumnElement[bool]:
    """SQL for one FHIR date parameter value such as ``ge2026-12-14`` on an instant column."""
    prefix, value = ("eq", raw)
    if raw[:2] in _PREFIXES and not raw[:2].isdigit():
        prefix, value = raw[:2], raw[2:]
    start, end = parse_instant(value, name)
    if prefix == "eq":
        return and_(column >= start, column < end)
    if prefix == "ne":
        return (column < start) | (column >= end)
    if prefix == "gt":
        return column >= end
    if prefix == "ge":
        return column >= start
    if prefix == "lt":
        return column < start
    return column < end  # le


def reference_id(raw: str, resource_type: str, name: str) -> str:
    """The id in ``Type/id``, an absolute ``.../Type/id`` or a bare ``id``."""
    value = raw.strip().rstrip("/")
    if "/" in value:
        kind, _, ident = value.rpartition("/")
        if kind.rsplit("/", 1)[-1] != resource_type:
            raise InvalidSearch(f"参数{name}应引用{resource_type}资源",
                                detail=[{"field": name}])
        value = ident
    if not value:
        raise InvalidSearch(f"参数{name}缺少资源编号", detail=[{"field": name}])
    return value


def reference_int(raw: str, resource_type: str, name: str) -> int:
    """The row id a reference names; raises InvalidSearch for one no row can have."""
    value = parse_id(reference_id(raw, resource_type, name))
    if value is None:
        raise InvalidSearch(f"参数{name}的资源编号无效", detail=[{"field": name}])
    return value


def token(raw: str) -> tuple[str | None, str]:
    """``system|code`` or ``code``."""
    if "|" in raw:
        system, _, code = raw.partition("|")
        return system or None, code
    return None, raw


@dataclass(frozen=True)
class Query:
    """A search request: repeated parameters keep every value (``status=free,busy``)."""

    params: dict[str, list[str]]
    base: str

    def all(self, name: str) -> list[str]:
        out: list[str] = []
        for raw in self.params.get(name, []):
            out.extend(v for v in raw.split(",") if v)
        return out

    def one(self, name: str) -> str | None:
        values = self.params.get(name, [])
        return values[-1] if values else None

    def count(self) -> int:
        return self._int("_count", DEFAULT_COUNT, 0, MAX_COUNT)

    def offset(self) -> int:
        return self._int("_offset", 0, 0, 1_000_000)

    def _int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.one(name)
        if raw is None:
            return default
        value = parse_digits(raw)
        if value is None:
            raise InvalidSearch(f"参数{name}应为非负整数", detail=[{"field": name}])
        return max(low, min(high, value))


def _page_url(base: str, resource_type: str, query: Query, offset: int) -> str:
    pairs = [(k, v) for k, values in query.params.items() if k != "_offset" for v in values]
    if offset:
        pairs.append(("_offset", str(offset)))
    return f"{base}/{resource_type}" + (f"?{urlencode(pairs)}" if pairs else "")


def searchset(resource_type: str, query: Query, matches: list[dict[str, Any]], total: int,
              included: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A searchset Bundle with self/first/previous/next links for offset paging."""
    count, offset = query.count(), query.offset()
    links = [{"relation": "self", "url": _page_url(query.base, resource_type, query, offset)},
             {"relation": "first", "url": _page_url(query.base, resource_type, query, 0)}]
    if offset > 0:
        links.append({"relation": "previous",
                      "url": _page_url(query.base, resource_type, query, max(0, offset - count))})
    if count and offset + count < total:
        links.append({"relation": "next",
                      "url": _page_url(query.base, resource_type, query, offset + count)})
    return bundle(matches, total=total, links=links, included=included or [], base=query.base)


def bundle(matches: list[dict[str, Any]], *, base: str, total: int | None = None,
           links: list[dict[str, str]] | None = None,
           included: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entries = [_entry(r, base, "match") for r in matches]
    seen = {(r["resourceType"], r["id"]) for r in matches}
    for r in included or []:
        if (r["resourceType"], r["id"]) not in seen:
            seen.add((r["resourceType"], r["id"]))
            entries.append(_entry(r, base, "include"))
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                           "total": len(matches) if total is None else total}
    if links:
        out["link"] = links
    out["entry"] = entries
    return out


def _entry(resource: dict[str, Any], base: str, mode: str) -> dict[str, Any]:
    return {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": mode}}
