"""The confirmation and archive pages in a real headless Chromium, at phone
width: readable, nothing wider than the screen, and the button works."""

from __future__ import annotations

import re
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from digest import store
from digest.store import signups
from tests.browser import chromium, set_viewport
from tests.web.test_app import Server, Site, token

PHONE = 375


def fits(driver: object) -> bool:
    width = driver.execute_script(  # type: ignore[attr-defined]
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    return int(width) <= 0


def test_confirmation_page_on_a_phone_unsubscribes_with_its_button(site: Site) -> None:
    with chromium() as driver:
        set_viewport(driver, PHONE, 740)
        driver.get(f"{site.url}/unsubscribe?token={token('grace@example.org')}")
        assert "Unsubscribe" in driver.title
        assert "grace@example.org" in driver.find_element(By.TAG_NAME, "main").text
        assert fits(driver)
        assert site.reason("grace@example.org") is None  # the page alone changes nothing
        button = driver.find_element(By.ID, "unsubscribe")
        assert button.is_displayed()
        assert button.size["height"] >= 44  # a comfortable touch target
        assert button.size["width"] <= PHONE
        button.click()
        WebDriverWait(driver, 60).until(lambda d: "You are unsubscribed" in d.page_source)
        assert fits(driver)
    assert site.reason("grace@example.org") == "unsubscribed: web page"


def test_archive_pages_render_on_a_phone(site: Site, project: Path) -> None:
    result = site.send()
    assert result.edition is not None
    with chromium() as driver:
        set_viewport(driver, PHONE, 740)
        driver.get(f"{site.url}/archive")
        link = driver.find_element(By.PARTIAL_LINK_TEXT, "The Sample Digest #1")
        assert fits(driver)
        link.click()
        WebDriverWait(driver, 60).until(lambda d: "/archive/" in d.current_url)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Solid-State Batteries Leave the Lab for the Factory Floor" in body
        assert "You are reading the web version" in body
        assert "@example.org" not in body
        assert fits(driver)
        assert driver.find_elements(By.TAG_NAME, "script") == []


def test_the_sign_up_form_on_a_phone_then_the_confirmation_button(
    site: Site, smtp_server: Server
) -> None:
    with chromium() as driver:
        set_viewport(driver, PHONE, 740)
        driver.get(f"{site.url}/subscribe")
        assert "Subscribe to The Sample Digest" in driver.title
        assert fits(driver)
        honeypot = driver.find_element(By.ID, "website")
        assert not honeypot.is_displayed() or honeypot.location["x"] < 0
        driver.find_element(By.ID, "email").send_keys("phone@example.org")
        driver.find_element(By.ID, "name").send_keys("Pat Phone")
        driver.find_element(By.CSS_SELECTOR, "input[value=technology]").click()  # untick
        button = driver.find_element(By.ID, "subscribe")
        assert button.size["height"] >= 44 and button.size["width"] <= PHONE
        button.click()
        WebDriverWait(driver, 60).until(lambda d: "Check your inbox" in d.page_source)
        assert "phone@example.org" in driver.find_element(By.TAG_NAME, "main").text
        assert fits(driver)
        site.server.digest.signup.mailer.idle()
        (mail,) = [m for m in smtp_server[1].parsed() if "phone@example.org" in str(m["To"])]
        text = mail.get_body(("plain",)).get_content()
        confirm = re.search(r"https://digest\.example\.org(/confirm\?token=\S+)", text)
        assert confirm is not None
        driver.get(site.url + confirm.group(1))
        assert "phone@example.org" in driver.find_element(By.TAG_NAME, "main").text
        assert fits(driver)
        driver.find_element(By.ID, "confirm").click()
        WebDriverWait(driver, 60).until(lambda d: "You are subscribed" in d.page_source)
    with store.opened(site.settings.database) as db:
        row = signups.get(db, "phone@example.org")
    assert row is not None and row.status == "confirmed"
    assert (row.name, row.sections) == ("Pat Phone", frozenset({"science"}))
