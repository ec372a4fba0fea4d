"""The preview page in a real headless Chromium: it loads, its views switch,
and it reloads by itself when a template changes on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    NoSuchFrameException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from digest.preview.server import PreviewServer
from tests.browser import chromium
from tests.conftest import settings_for


@pytest.fixture
def running(project: Path) -> Iterator[tuple[PreviewServer, Path]]:
    mine = project / "my-templates" / "partials"
    mine.mkdir(parents=True)
    settings = settings_for(project, DIGEST_TEMPLATES=str(mine.parent))
    server = PreviewServer(lambda: settings, None, port=0)
    server.start()
    try:
        yield server, mine
    finally:
        server.stop()


def shown(driver: Any, pane: str) -> bool:
    result: bool = driver.find_element(By.ID, pane).is_displayed()
    return result


def frame_text(driver: Any, title: str) -> str:
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, f'iframe[title="{title}"]'))
    try:
        text: str = driver.find_element(By.TAG_NAME, "body").text
        return text
    finally:
        driver.switch_to.default_content()


def test_page_loads_switches_views_and_reloads(running: tuple[PreviewServer, Path]) -> None:
    server, partials = running
    with chromium(width=1400) as driver:
        driver.get(server.url)
        wait = WebDriverWait(
            driver,
            60,  # a bound, not a measure: a loaded machine rebuilds slowly
            ignored_exceptions=(
                NoSuchElementException,
                NoSuchFrameException,
                StaleElementReferenceException,
            ),
        )
        wait.until(lambda d: "Solid-State Batteries" in frame_text(d, "Desktop view"))
        assert shown(driver, "desktop") and shown(driver, "mobile")
        assert not shown(driver, "text")
        mobile = driver.find_element(By.CSS_SELECTOR, 'iframe[title="Mobile view"]')
        assert (
            mobile.size["width"]
            < 400
            < driver.find_element(By.CSS_SELECTOR, 'iframe[title="Desktop view"]').size["width"]
        )
        assert "The Sample Digest #1" in driver.find_element(By.ID, "subject").text
        assert "KB of 102 KB" in driver.find_element(By.ID, "size").text

        driver.find_element(By.CSS_SELECTOR, 'button[data-view="text"]').click()
        assert shown(driver, "text") and not shown(driver, "desktop")
        assert "IN THIS EDITION" in driver.find_element(By.ID, "text").text
        driver.find_element(By.CSS_SELECTOR, 'button[data-view="mobile"]').click()
        assert (
            shown(driver, "mobile") and not shown(driver, "desktop") and not shown(driver, "text")
        )

        (partials / "footer.mjml.j2").write_text(
            "<mj-section><mj-column><mj-text>A footer changed on disk</mj-text>"
            "</mj-column></mj-section>\n",
            encoding="utf-8",
        )
        wait.until(lambda d: "A footer changed on disk" in frame_text(d, "Mobile view"))
        # The reload keeps the chosen view.
        assert shown(driver, "mobile") and not shown(driver, "desktop")

        Select(driver.find_element(By.ID, "reader")).select_by_value("line-3")
        wait.until(lambda d: "Hello Grace Hopper," in frame_text(d, "Mobile view"))
        assert "Deep-Sea Microbes" not in frame_text(driver, "Mobile view")
