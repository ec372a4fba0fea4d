"""The compiled email in a real headless Chromium: narrow and wide layouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.render import compile_edition, personalize
from tests.browser import chromium, set_viewport
from tests.conftest import settings_for
from tests.render_samples import SUBSCRIBER, golden_edition

GEOMETRY = """
const meta = document.querySelector('.masthead-meta');
const brand = meta.parentElement.querySelector('div[class*="mj-column"]');
const box = el => el.getBoundingClientRect();
return {
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  brand: [box(brand).left, box(brand).top, box(brand).bottom],
  meta: [box(meta).left, box(meta).top, box(meta).bottom],
};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def email_file(project: Path) -> Path:
    look = settings_for(project).look
    html, _ = personalize(compile_edition(golden_edition(), look), SUBSCRIBER)
    path = project / "email.html"
    path.write_text(html, encoding="utf-8")
    return path


def geometry(driver: Any, path: Path, width: int) -> dict[str, Any]:
    set_viewport(driver, width)
    driver.get(path.as_uri())
    result: dict[str, Any] = driver.execute_script(GEOMETRY)
    return result


def test_at_375_px_nothing_scrolls_sideways_and_columns_stack(
    browser: Any, email_file: Path
) -> None:
    g = geometry(browser, email_file, 375)
    assert g["innerWidth"] == 375
    assert g["scrollWidth"] <= g["innerWidth"], g
    assert g["meta"][1] >= g["brand"][2] - 1, g  # the edition/date column sits below the brand


def test_at_700_px_columns_sit_side_by_side(browser: Any, email_file: Path) -> None:
    g = geometry(browser, email_file, 700)
    assert g["scrollWidth"] <= g["innerWidth"], g
    assert g["meta"][0] > g["brand"][0] + 200, g
    assert abs(g["meta"][1] - g["brand"][1]) < 40, g


def test_text_of_every_script_reaches_the_page(browser: Any, email_file: Path) -> None:
    set_viewport(browser, 600)
    browser.get(email_file.as_uri())
    body = browser.find_element("tag name", "body").text
    for title in (
        "Rivers return to the city 🌊",
        "東京の新しい図書館が開館",
        "מחקר חדש על שינה וזיכרון",
    ):
        assert title in body
    assert "Hello Ada Lovelace," in body
    directions = browser.execute_script(
        "return [...document.querySelectorAll('h2')].map(h => [h.textContent.trim(), "
        "getComputedStyle(h).direction])"
    )
    assert ["מחקר חדש על שינה וזיכרון", "rtl"] in directions
    assert ["Rivers return to the city 🌊", "ltr"] in directions


DARK_COLOURS = """
const card = document.querySelector('.card');
const title = card.parentElement.querySelector('.card h2 a');
const luminance = c => c.match(/\\d+/g).slice(0, 3).reduce((a, b) => a + Number(b), 0) / 3;
return {
  card: luminance(getComputedStyle(card).backgroundColor),
  title: luminance(getComputedStyle(title).color),
  text: luminance(getComputedStyle(card.querySelector('div')).color),
};
"""


def test_in_dark_mode_cards_turn_dark_and_text_light(browser: Any, email_file: Path) -> None:
    set_viewport(browser, 600)
    scheme = {"name": "prefers-color-scheme", "value": "dark"}
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [scheme]})
    try:
        browser.get(email_file.as_uri())
        dark = browser.execute_script(DARK_COLOURS)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.get(email_file.as_uri())
    light = browser.execute_script(DARK_COLOURS)
    assert dark["card"] < 60 and dark["title"] > 180 and dark["text"] > 180, dark
    assert light["card"] > 200 and light["title"] < 80, light
