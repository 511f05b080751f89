"""docs/exams.md shows the packaged catalogue's exams and rules exactly as they are."""

from __future__ import annotations

from pathlib import Path

from onetrip.exams.catalogue import default_catalogue_data, parse_catalogue, rules_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "exams.md"
START = "<!-- rules-table: written by `onetrip exams rules-table`, checked by tests -->\n"
END = "<!-- /rules-table -->"


def test_the_rules_table_in_the_guide_is_the_catalogue_shipped() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text
    shown = text.split(START, 1)[1].split(END, 1)[0]
    assert shown == rules_table(parse_catalogue(default_catalogue_data()))
