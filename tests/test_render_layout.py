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
    settings = settings_for(project)
    html, _ = personalize(compile_edition(golden_edition(), settings), SUBSCRIBER)
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
