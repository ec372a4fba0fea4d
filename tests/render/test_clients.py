"""The compiled email against caniemail.com's support data for Gmail (web,
iOS, Android), Outlook (Windows, web, apps), Apple Mail, Yahoo and Samsung
Email: every feature the template uses is known, and every gap has a fallback
that can be seen in the HTML."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from digest.render import budget
from digest.render.compile import _compile_mjml, context, personalize
from digest.render.templates import render_template, template_environment
from tests.conftest import settings_for
from tests.render.caniemail import FEATURES, features_used
from tests.render.html_views import Views, views
from tests.render_samples import SUBSCRIBER, golden_edition

DESIGN = {
    "DIGEST_LOGO_URL": "https://digest.example.org/logo.png",
    "DIGEST_POSTAL_ADDRESS": "The Test Digest, 1 Example Street, 10115 Berlin",
    "DIGEST_FOOTER_TEXT": "Thank you for reading.",
}


@pytest.fixture(scope="module")
def email(tmp_path_factory: pytest.TempPathFactory) -> Views:
    """Every partial in use: logo, note, key points with bullets, 'more'."""
    project = tmp_path_factory.mktemp("clients")
    (project / "digest.toml").write_text('[digest]\ntitle = "T"\n', encoding="utf-8")
    look = settings_for(project, **DESIGN).look
    edition = replace(golden_edition(), note="A note from the editor.")
    values = context(edition, look, more=2)
    markup = budget.minify(
        _compile_mjml(render_template(template_environment(look), "digest.mjml.j2", values))
    )
    return views(markup)


def test_every_feature_the_email_uses_is_in_the_table(email: Views) -> None:
    unknown = sorted(features_used(email) - set(FEATURES))
    assert not unknown, (
        f"the template now uses {unknown}: look each up in caniemail's _features/ and add its"
        " support in the listed clients to tests/render/caniemail.py"
    )


def test_a_feature_new_to_the_template_is_noticed(email: Views) -> None:
    grid = views(email.source.replace("<h2 ", '<h2 style="display:grid;position:sticky" ', 1))
    assert "css-position" in features_used(grid) - set(FEATURES)
    # A value a listed client lacks (grid: Gmail's apps with other accounts).
    assert FEATURES["css-display"].check is not None and FEATURES["css-display"].check(grid)


def test_every_gap_in_a_listed_client_has_a_fallback_that_holds(email: Views) -> None:
    problems = []
    for name in sorted(features_used(email) & set(FEATURES)):
        feature = FEATURES[name]
        if not feature.gaps():
            continue
        if not feature.fallback:
            problems.append(f"{name}: missing in {', '.join(feature.gaps())}, no fallback")
        elif feature.check is not None:
            problems += [f"{name}: {p}" for p in feature.check(email)]
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_guard_against(email: Views) -> None:
    # Links laid out by display:block, as the table of contents once was.
    broken = email.source.replace(
        "</td></tr></table></div>",
        '<a href="https://x.example/1" style="display:block;padding:3px 0;color:#000">One</a>'
        '<a href="https://x.example/2" style="display:block;padding:3px 0;color:#000">Two</a>'
        "</td></tr></table></div>",
        1,
    )
    assert broken != email.source
    bad = views(broken)
    assert FEATURES["css-display"].check is not None and FEATURES["css-display"].check(bad)
    assert FEATURES["css-padding"].check is not None and FEATURES["css-padding"].check(bad)
    # A link without an inline colour loses the design where <style> is dropped.
    start = email.source.index("<a ")
    end = email.source.index(">", start)
    tag = email.source[start:end]
    uncoloured = views(
        email.source[:start] + tag.replace("color:", "x-color:") + email.source[end:]
    )
    assert FEATURES["html-style"].check is not None and FEATURES["html-style"].check(uncoloured)
    # A button without Outlook's VML shape.
    no_vml = views(email.source.replace("<v:roundrect", "<v:oval", 1))
    assert FEATURES["css-border-radius"].check is not None
    assert FEATURES["css-border-radius"].check(no_vml)


def test_table_of_contents_entries_are_rows_of_their_own(email: Views) -> None:
    toc = email.outlook.xpath("//div[contains(@class, 'toc')]")[0]
    links = toc.xpath(".//a")
    assert len(links) == 3  # the golden edition's three articles with a link
    cells = [link.getparent() for link in links]
    assert all(cell.tag == "td" for cell in cells)
    tree = toc.getroottree()
    rows = {tree.getpath(cell.getparent()) for cell in cells}
    assert len(rows) == len(cells)  # one <tr> each


def test_the_whole_button_is_the_link(email: Views) -> None:
    buttons = [a for a in email.dom.iter("a") if "Read the full story" in (a.text or "")]
    assert buttons
    for button in buttons:
        style = button.get("style") or ""
        # The padding is the link's own, so the whole coloured box is clickable.
        assert "padding:" in style and "display:inline-block" in style
    outlook = email.source.count("<v:roundrect")
    assert outlook == len(buttons) + 1  # and the "Read the whole edition" button


def test_bullets_stay_bullets_in_the_email(project: Path) -> None:
    from digest.render import compile_edition

    look = settings_for(project).look
    html, text = personalize(compile_edition(golden_edition(), look), SUBSCRIBER)
    root = views(html).dom
    nested = root.xpath("//li/ul/li")
    assert [li.text_content().strip() for li in nested][:2] == [
        "It changes things.",
        "People care.",
    ]
    lines = text.splitlines()
    first = lines.index("      * It changes things.")
    assert lines[first + 1] == "      * People care."
    assert lines[first - 1].strip() == "- Why it matters:"
