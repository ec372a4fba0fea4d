"""The email in a real headless Chromium at 375 and 700 px, in the light and
the dark scheme (prefers-color-scheme emulated): every piece of text meets
WCAG AA contrast (4.5:1) on what is behind it, and the table of contents has
one line per story. DIGEST_REGENERATE_SCREENSHOTS=1 saves the four
screenshots under docs/screenshots/."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.collect.files import read_article
from digest.config import SectionConfig
from digest.edition import build_edition
from digest.model import Edition
from digest.render import compile_edition, personalize
from digest.summarize import SummaryOptions, make_summarizer
from tests.browser import chromium, set_viewport
from tests.conftest import settings_for
from tests.render_samples import SUBSCRIBER

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
ARTICLE = ROOT / "tests" / "summarize" / "data" / "harbour-deal.txt"
AA = 4.5

# Every element that shows text of its own, its text colour and the colour
# behind it: the first ancestor (or itself) with an opaque background.
TEXT_PAIRS = """
const opaque = c => c && c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c);
const shown = el => {
  for (let e = el; e; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.display === 'none' || s.visibility === 'hidden' || s.opacity === '0') return false;
  }
  const r = el.getBoundingClientRect();
  return r.width > 1 && r.height > 1;
};
const pairs = [];
for (const el of document.body.querySelectorAll('*')) {
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || !shown(el)) continue;
  let bg = null;
  for (let e = el; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (opaque(c)) { bg = c; break; }
  }
  pairs.push([el.tagName, el.textContent.trim().slice(0, 40), getComputedStyle(el).color,
              bg || getComputedStyle(document.documentElement).backgroundColor]);
}
return pairs;
"""
TOC_ROWS = """
return [...document.querySelectorAll('.toc-list td')].map(td => {
  const r = td.getBoundingClientRect();
  return [td.textContent.trim(), r.top, r.bottom];
});
"""


def channels(css: str) -> tuple[float, float, float]:
    values = css[css.index("(") + 1 : css.index(")")].replace("/", ",").split(",")
    return float(values[0]), float(values[1]), float(values[2])


def luminance(css: str) -> float:
    def linear(v: float) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(v) for v in channels(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def digest_edition() -> Edition:
    """A real edition: the sectioned test article and two of the samples."""
    science = sorted((ROOT / "samples" / "science").glob("*"))[:2]
    # Addresses on the web, as feeds give them: links and buttons show.
    found = {"world": [ARTICLE], "science": science}
    articles = {
        key: [replace(read_article(p), url=f"https://news.example.org/{p.stem}") for p in paths]
        for key, paths in found.items()
    }
    sections = [SectionConfig("world", "World"), SectionConfig("science", "Science")]
    when = datetime(2026, 11, 30, 7, tzinfo=UTC)
    summarizer = make_summarizer(SummaryOptions())
    return build_edition(
        "2026-11-30T0700", "The Test Digest", 7, when, sections, articles, summarizer
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def email_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("schemes")
    (folder / "digest.toml").write_text('[digest]\ntitle = "T"\n', encoding="utf-8")
    look = settings_for(folder, DIGEST_POSTAL_ADDRESS="1 Example Street, Berlin").look
    html, _ = personalize(compile_edition(digest_edition(), look), SUBSCRIBER)
    path = folder / "email.html"
    path.write_text(html, encoding="utf-8")
    return path


def show(driver: Any, path: Path, width: int, scheme: str) -> None:
    set_viewport(driver, width)
    features = [{"name": "prefers-color-scheme", "value": scheme}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})
    driver.get(path.as_uri())


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 700])
def test_every_text_meets_aa_contrast(
    browser: Any, email_file: Path, width: int, scheme: str
) -> None:
    show(browser, email_file, width, scheme)
    pairs = browser.execute_script(TEXT_PAIRS)
    assert len(pairs) > 40  # the masthead, the cards, the footer: all measured
    low = [
        (tag, text, fg, bg, round(contrast(fg, bg), 2))
        for tag, text, fg, bg in pairs
        if contrast(fg, bg) < AA
    ]
    assert not low, "\n".join(map(str, low))
    backgrounds = {bg for *_, bg in pairs}
    if scheme == "dark":  # the dark scheme is really dark, page included
        assert all(luminance(bg) < 0.2 for bg in backgrounds if "255, 255, 255" not in bg), (
            backgrounds
        )
        page = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert luminance(page) < 0.05, page


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 700])
def test_table_of_contents_has_a_line_per_story(
    browser: Any, email_file: Path, width: int, scheme: str
) -> None:
    show(browser, email_file, width, scheme)
    rows = browser.execute_script(TOC_ROWS)
    assert [text for text, _, _ in rows] == [
        "World",
        "Port Cities Sign a Ferry Pact After Years of Quarrels",
        "Science",
        "Deep-Sea Microbes Breathe Metal to Survive",
        "Short Naps Help Memory, but Only the Right Kind",
    ]
    for above, below in itertools.pairwise(rows):
        assert below[1] >= above[2] - 1, (above, below)  # each on a line below the one before
    width_px = browser.execute_script("return document.documentElement.scrollWidth")
    assert width_px <= width


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 700])
def test_screenshots(
    browser: Any, email_file: Path, width: int, scheme: str, tmp_path: Path
) -> None:
    show(browser, email_file, width, scheme)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    set_viewport(browser, width, min(height, 6000))
    browser.get(email_file.as_uri())
    target = tmp_path / f"email-{width}-{scheme}.png"
    assert browser.save_screenshot(str(target))
    png = target.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == width  # the IHDR width: no sideways scroll
    if os.environ.get("DIGEST_REGENERATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / target.name).write_bytes(png)
