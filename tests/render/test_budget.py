"""The size budget, template overrides and the compile cache, on real compiles."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from digest import edition as editions
from digest.errors import RenderError
from digest.render import budget, compile_edition, personalize, web_version
from digest.render import cache as render_cache
from digest.render import compile as render
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
        compiled = compile_edition(big, settings_for(project).look)
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
    page = web_version(big, settings_for(project).look)
    assert all(a.title in page for a in gone)
    assert "Unsubscribe" not in page and "\ue000" not in page


def test_edition_within_budget_keeps_everything(project: Path) -> None:
    compiled = compile_edition(edition_of(12), settings_for(project).look)
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
    look = settings_for(project, DIGEST_TEMPLATES=str(mine)).look
    html, text = personalize(compile_edition(edition_of(2), look), SUBSCRIBER)
    assert "OUR OWN FOOTER for ada@example.org" in html
    assert "Story number 0" in html  # the built-in partials still render the rest
    assert "Manage preferences" not in html
    assert text == "Text of our own: The Test Digest\n"


def test_broken_user_template_names_the_file(project: Path) -> None:
    mine = project / "broken"
    mine.mkdir()
    (mine / "digest.txt.j2").write_text("{% if %}\n", encoding="utf-8")
    with pytest.raises(RenderError, match=r"digest.txt.j2, line 1"):
        compile_edition(edition_of(1), settings_for(project, DIGEST_TEMPLATES=str(mine)).look)


def test_an_error_in_an_overridden_partial_names_the_partial_and_its_line(project: Path) -> None:
    mine = project / "my-templates"
    (mine / "partials").mkdir(parents=True)
    (mine / "partials" / "article.mjml.j2").write_text(
        "    <mj-section>\n      <mj-column>\n        <mj-text>{{ missing_variable }}</mj-text>\n"
        "      </mj-column>\n    </mj-section>\n",
        encoding="utf-8",
    )
    look = settings_for(project, DIGEST_TEMPLATES=str(mine)).look
    with pytest.raises(RenderError) as error:
        compile_edition(edition_of(2), look)
    message = str(error.value)
    # The partial is blamed, not digest.mjml.j2 that includes it.
    assert "partials/article.mjml.j2, line 3" in message
    assert "missing_variable" in message and " digest.mjml.j2" not in message


def test_a_syntax_error_in_a_partial_names_the_partial_and_its_line(project: Path) -> None:
    mine = project / "my-templates"
    (mine / "partials").mkdir(parents=True)
    (mine / "partials" / "footer.mjml.j2").write_text(
        "<mj-section><mj-column>\n<mj-text>fine</mj-text>\n{% if %}\n</mj-column></mj-section>\n",
        encoding="utf-8",
    )
    look = settings_for(project, DIGEST_TEMPLATES=str(mine)).look
    with pytest.raises(RenderError, match=r"partials/footer\.mjml\.j2, line 3"):
        compile_edition(edition_of(1), look)
    # The web version compiles the same templates and says the same.
    with pytest.raises(RenderError, match=r"partials/footer\.mjml\.j2, line 3"):
        web_version(edition_of(1), look)


def test_identical_editions_and_variants_compile_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiles: list[str] = []
    real = render.compile_uncached

    def counting(edition, look):  # type: ignore[no-untyped-def]
        compiles.append(edition.id)
        return real(edition, look)

    monkeypatch.setattr(render, "compile_uncached", counting)
    look = settings_for(project).look
    full = edition_of(4)
    first = compile_edition(full, look)
    # "world;science" is every section: the same edition as "all".
    both = editions.for_sections(full, frozenset({"world", "science"}))
    assert compile_edition(both, look) is first
    assert compile_edition(editions.for_sections(full, frozenset({"world"})), look) is not first
    assert len(compiles) == 2
    # Settings that change the output change the key.
    compile_edition(full, settings_for(project, DIGEST_ACCENT_COLOR="#000000").look)
    assert len(compiles) == 3


def test_disk_cache_survives_the_process_and_follows_template_changes(project: Path) -> None:
    mine = project / "my-templates"
    mine.mkdir()
    look = settings_for(
        project, DIGEST_RENDER_CACHE=str(project / "cache"), DIGEST_TEMPLATES=str(mine)
    ).look
    edition = edition_of(3)
    first = compile_edition(edition, look)
    assert len(list((project / "cache").glob("*.json"))) == 1
    render_cache.clear()  # as a new process would start
    again = compile_edition(edition, look)
    assert again == first and again is not first
    (mine / "digest.txt.j2").write_text("changed {{ title }}\n", encoding="utf-8")
    changed = compile_edition(edition, look)
    assert personalize(changed, {})[1] == "changed The Test Digest\n"
    assert len(list((project / "cache").glob("*.json"))) == 2


def test_corrupt_disk_cache_entry_is_compiled_again(project: Path) -> None:
    look = settings_for(project, DIGEST_RENDER_CACHE=str(project / "cache")).look
    first = compile_edition(edition_of(1), look)
    (entry,) = (project / "cache").glob("*.json")
    entry.write_text("{not json", encoding="utf-8")
    render_cache.clear()
    assert compile_edition(edition_of(1), look) == first


def test_design_settings_reach_the_email(project: Path) -> None:
    look = settings_for(
        project,
        DIGEST_BRAND_COLOR="#123456",
        DIGEST_LOGO_URL="https://cdn.example.org/logo.png",
        DIGEST_POSTAL_ADDRESS="1 Example Street, Berlin",
        DIGEST_PREHEADER="Our pick of the week",
    ).look
    compiled = compile_edition(replace(edition_of(2), title="Weekly"), look)
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
