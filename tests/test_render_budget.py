"""The size budget, template overrides and the compile cache, on real compiles."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from digest import budget, render, render_cache
from digest import edition as editions
from digest.render import compile_edition, personalize, web_version
from tests.conftest import settings_for
from tests.render_samples import SUBSCRIBER, edition_of


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    render_cache.clear()


def test_edition_over_budget_drops_lowest_ranked_articles(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = edition_of(60, words=120)
    with caplog.at_level(logging.WARNING):
        compiled = compile_edition(big, settings_for(project))
    html, text = personalize(compiled, SUBSCRIBER)
    assert compiled.dropped, "a 60-article edition should not fit in 102 KB"
    assert len(html.encode()) <= budget.BUDGET_BYTES
    kept = [a for s in big.sections for a in s.articles if a.title not in compiled.dropped]
    gone = [a for s in big.sections for a in s.articles if a.title in compiled.dropped]
    assert max(a.rank for a in kept) < min(a.rank for a in gone)
    assert f"{len(gone)} more stories in the web archive" in html
    assert "https://digest.example.org/archive/2026-11-29T0700" in html
    assert f"{len(gone)} more stories in the web archive" in text
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "KB" in warning and str(len(gone)) in warning and "102 KB" in warning
    # The web archive carries every article, dropped ones included.
    page = web_version(big, settings_for(project))
    assert all(a.title in page for a in gone)
    assert "Unsubscribe" not in page and "\ue000" not in page


def test_edition_within_budget_keeps_everything(project: Path) -> None:
    compiled = compile_edition(edition_of(12), settings_for(project))
    assert compiled.dropped == ()
    assert not budget.over(compiled.html_bytes)
    assert "in the web archive" not in personalize(compiled, SUBSCRIBER)[0]


def test_user_templates_override_single_files(project: Path) -> None:
    mine = project / "my-templates"
    (mine / "partials").mkdir(parents=True)
    (mine / "partials" / "footer.mjml.j2").write_text(
        '<mj-section><mj-column><mj-text>OUR OWN FOOTER for {{ slot("email") }}'
        "</mj-text></mj-column></mj-section>\n",
        encoding="utf-8",
    )
    (mine / "digest.txt.j2").write_text("Text of our own: {{ title }}\n", encoding="utf-8")
    settings = settings_for(project, DIGEST_TEMPLATES=str(mine))
    html, text = personalize(compile_edition(edition_of(2), settings), SUBSCRIBER)
    assert "OUR OWN FOOTER for ada@example.org" in html
    assert "Story number 0" in html  # the built-in partials still render the rest
    assert "Manage preferences" not in html
    assert text == "Text of our own: The Test Digest\n"


def test_broken_user_template_names_the_file(project: Path) -> None:
    mine = project / "broken"
    mine.mkdir()
    (mine / "digest.txt.j2").write_text("{% if %}\n", encoding="utf-8")
    with pytest.raises(render.RenderError, match=r"digest.txt.j2 \(line 1\)"):
        compile_edition(edition_of(1), settings_for(project, DIGEST_TEMPLATES=str(mine)))


def test_identical_editions_and_variants_compile_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiles: list[str] = []
    real = render.compile_uncached

    def counting(edition, settings):  # type: ignore[no-untyped-def]
        compiles.append(edition.id)
        return real(edition, settings)

    monkeypatch.setattr(render, "compile_uncached", counting)
    settings = settings_for(project)
    full = edition_of(4)
    first = compile_edition(full, settings)
    # "world;science" is every section: the same edition as "all".
    both = editions.for_sections(full, frozenset({"world", "science"}))
    assert compile_edition(both, settings) is first
    assert compile_edition(editions.for_sections(full, frozenset({"world"})), settings) is not first
    assert len(compiles) == 2
    # Settings that change the output change the key.
    compile_edition(full, settings_for(project, DIGEST_ACCENT_COLOR="#000000"))
    assert len(compiles) == 3


def test_disk_cache_survives_the_process_and_follows_template_changes(project: Path) -> None:
    mine = project / "my-templates"
    mine.mkdir()
    settings = settings_for(
        project, DIGEST_RENDER_CACHE=str(project / "cache"), DIGEST_TEMPLATES=str(mine)
    )
    edition = edition_of(3)
    first = compile_edition(edition, settings)
    assert len(list((project / "cache").glob("*.json"))) == 1
    render_cache.clear()  # as a new process would start
    again = compile_edition(edition, settings)
    assert again == first and again is not first
    (mine / "digest.txt.j2").write_text("changed {{ title }}\n", encoding="utf-8")
    changed = compile_edition(edition, settings)
    assert personalize(changed, {})[1] == "changed The Test Digest\n"
    assert len(list((project / "cache").glob("*.json"))) == 2


def test_corrupt_disk_cache_entry_is_compiled_again(project: Path) -> None:
    settings = settings_for(project, DIGEST_RENDER_CACHE=str(project / "cache"))
    first = compile_edition(edition_of(1), settings)
    (entry,) = (project / "cache").glob("*.json")
    entry.write_text("{not json", encoding="utf-8")
    render_cache.clear()
    assert compile_edition(edition_of(1), settings) == first


def test_design_settings_reach_the_email(project: Path) -> None:
    settings = settings_for(
        project,
        DIGEST_BRAND_COLOR="#123456",
        DIGEST_LOGO_URL="https://cdn.example.org/logo.png",
        DIGEST_POSTAL_ADDRESS="1 Example Street, Berlin",
        DIGEST_PREHEADER="Our pick of the week",
    )
    compiled = compile_edition(replace(edition_of(2), title="Weekly"), settings)
    html, text = personalize(compiled, SUBSCRIBER)
    assert "#123456" in html and "https://cdn.example.org/logo.png" in html
    assert 'alt="Weekly"' in html or "alt=Weekly" in html
    assert "1 Example Street, Berlin" in html and "1 Example Street, Berlin" in text
    assert compiled.preheader == "Our pick of the week" and "Our pick of the week" in html


@pytest.mark.parametrize(
    ("name", "value"), [("DIGEST_BRAND_COLOR", "red"), ("DIGEST_LOGO_URL", "javascript:x")]
)
def test_invalid_design_settings_are_refused(project: Path, name: str, value: str) -> None:
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match=name):
        settings_for(project, **{name: value})
