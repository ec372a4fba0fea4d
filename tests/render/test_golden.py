"""Golden files for the rendered email: DIGEST_REGENERATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.config import Look
from digest.render import compile_edition, personalize, web_version
from tests.conftest import settings_for
from tests.render_samples import SUBSCRIBER, golden_edition

GOLDEN = Path(__file__).resolve().parent / "golden"
DESIGN = {
    "DIGEST_BRAND_COLOR": "#123456",
    "DIGEST_ACCENT_COLOR": "#a0522d",
    "DIGEST_LOGO_URL": "https://digest.example.org/logo.png",
    "DIGEST_POSTAL_ADDRESS": "The Test Digest, 1 Example Street, 10115 Berlin",
    "DIGEST_FOOTER_TEXT": "Thank you for reading.",
}


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("DIGEST_REGENERATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with DIGEST_REGENERATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs; if intended, regenerate the golden files"


@pytest.fixture
def golden_look(project: Path) -> Look:
    return settings_for(project, **DESIGN).look


def test_email_html_and_text_match_the_golden_files(golden_look: Look) -> None:
    html, text = personalize(compile_edition(golden_edition(), golden_look), SUBSCRIBER)
    check_golden("digest.html", html)
    check_golden("digest.txt", text)
    assert all(len(line) <= 72 or "://" in line for line in text.splitlines())


def test_web_version_matches_its_golden_file(golden_look: Look) -> None:
    check_golden("web.html", web_version(golden_edition(), golden_look))
