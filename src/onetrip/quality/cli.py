"""`onetrip quality ...`: import HIS exports, print and file the monthly report."""

from __future__ import annotations

from pathlib import Path

import typer

from onetrip.quality.rules import DatasetKind

app = typer.Typer(help="Prescription and cost analytics (双十, 药占比/耗占比, 合理用药).",
                  no_args_is_help=True)


def _fail(exc: Exception) -> typer.Exit:
    from onetrip.errors import OnetripError

    assert isinstance(exc, OnetripError)
    typer.echo(f"{exc.code}: {exc.text}", err=True)
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    for item in detail.get("errors", [])[:50]:
        typer.echo(f"  第{item['row']}行 {item['field']}：{item['message']}", err=True)
    if detail.get("missing"):
        typer.echo("  缺少：" + "、".join(detail["missing"]), err=True)
    return typer.Exit(2)


@app.command("import")
def import_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, .xlsx or .parquet"),
    kind: DatasetKind = typer.Option(..., help="prescriptions (处方明细) or charges (费用明细)"),
    hospital: str = typer.Option(..., help="Hospital code"),
    period: str = typer.Option(..., help="The month the file holds, e.g. 2026-10"),
    mapping: Path | None = typer.Option(None, help="JSON {field: header} for this HIS"),
) -> None:
    """Import one month; every row is checked and a bad row stops the whole file."""
    from onetrip.db import session_scope
    from onetrip.errors import OnetripError
    from onetrip.org import service as org_service
    from onetrip.quality import service

    try:
        columns = service.parse_mapping(mapping.read_text(encoding="utf-8")) if mapping \
            else None
        with session_scope() as db, typer.progressbar(length=100, label="导入中") as bar:
            shown = [0]

            def progress(done: int, total: int) -> None:
                pct = int(100 * done / total) if total else 100
                bar.update(pct - shown[0])
                shown[0] = pct

            h = org_service.access_hospital(db, hospital)
            row = service.import_file(db, hospital=h, kind=kind, period=period, source=path,
                                      mapping=columns, imported_by="cli", progress=progress)
            rows, version = row.rows, row.version
    except OnetripError as exc:
        raise _fail(exc) from exc
    note = "（替换了此前的导入）" if version > 1 else ""
    typer.echo(f"imported {rows} rows of {kind.value} for {hospital} {period}{note}")


@app.command("report")
def report_command(period: str = typer.Option(..., help="2026-10, 2026-Q4 or 2026-W43"),
                   hospital: str = typer.Option(...),
                   xlsx: Path | None = typer.Option(None, help="Write the Excel workbook here")
                   ) -> None:
    """Print the headline indicators; with --xlsx also write the workbook."""
    from onetrip.db import session_scope
    from onetrip.errors import OnetripError
    from onetrip.org import service as org_service
    from onetrip.quality import analyses, report, service

    try:
        with session_scope() as db:
            h = org_service.access_hospital(db, hospital)
            p = service.period_of(period)
            rat = analyses.ratios(db, h, p)
            use = analyses.rational(db, h, p)
            values = rat.total | rat.shares | use.indicators
            for key, name, _source, target, _d in report.indicator_rows(service.thresholds()):
                shown = _in_unit(key, values.get(key))
                typer.echo(f"{name}: {shown}" + (f"  (阈值 {_in_unit(key, target)})"
                                                 if target else ""))
            if xlsx is not None:
                report.build_workbook(db, h, p).save(xlsx)
                typer.echo(f"workbook written to {xlsx}")
    except OnetripError as exc:
        raise _fail(exc) from exc


def _in_unit(key: str, value: float | None) -> str:
    """An indicator's value (or threshold) as the report shows it: per cent, or a plain
    number for the two that are not shares."""
    if value is None:
        return "—"
    return f"{value:.2f}" if key in ("consumables_per_100", "antibacterial_intensity") \
        else f"{value:.2%}"


@app.command("gc")
def gc_command() -> None:
    """Delete Parquet files no import names any more (replaced months, failed imports)."""
    from onetrip.db import session_scope
    from onetrip.quality import service

    with session_scope() as db:
        removed = service.collect_garbage(db)
    typer.echo(f"removed {removed} files")
