"""No boxes instead of glyphs: every character a page can show is in Noto Sans CJK SC, the
font Debian's fonts-noto-cjk installs on kiosks and CI (there is no emoji font there, so an
emoji icon printed as an empty box)."""

from __future__ import annotations

from pathlib import Path

import pytest

import onetrip

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SOURCES = Path(onetrip.__file__).parent


def _cmap() -> set[int]:
    from fontTools.ttLib import TTCollection

    for font in TTCollection(str(FONT)).fonts:
        if font["name"].getDebugName(1) == "Noto Sans CJK SC":
            return set(font.getBestCmap())
    raise AssertionError("Noto Sans CJK SC is not in the collection")


@pytest.mark.skipif(not FONT.exists(), reason="fonts-noto-cjk is not installed "
                    "(apt-get install fonts-noto-cjk); .ci/run installs it")
def test_every_character_of_the_pages_is_drawn_by_the_cjk_font() -> None:
    cmap = _cmap()
    missing = {}
    for path in sorted(SOURCES.rglob("*")):
        if path.suffix not in (".html", ".css", ".py") or "migrations" in path.parts:
            continue
        for ch in path.read_text(encoding="utf-8"):
            if ord(ch) > 0x7F and ord(ch) not in cmap:
                missing.setdefault(f"U+{ord(ch):04X} {ch}", path.relative_to(SOURCES).as_posix())
    assert not missing, missing


def test_every_empty_state_icon_is_one_the_icon_set_draws() -> None:
    """An unknown icon name would fall back to a bare circle: each name the templates use
    is drawn, in SVG, with no font involved."""
    import re

    from onetrip.web import templates

    names = {n for path in SOURCES.rglob("*.html")
             for n in re.findall(r'\bicon="([a-z]+)"', path.read_text(encoding="utf-8"))}
    assert names >= {"calendar", "list", "person", "hourglass", "hospital"}
    icon = templates().env.get_template("icons.html").module.icon  # type: ignore[attr-defined]
    for name in names:
        svg = str(icon(name))
        assert svg.startswith('<svg class="icon"') and "<path" in svg, name
