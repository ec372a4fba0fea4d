"""Sources are the configured ones: a source removed from digest.toml is no
longer listed by `digest sources`, and the articles collected from it but
not yet sent are not offered to the next edition."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from digest import job, store
from digest.cli import main
from digest.collect import collect, health_rows
from digest.config import Settings
from digest.edition import lifecycle
from digest.model import article_from_dict
from digest.store import articles as store_articles
from tests import feed_samples as fs
from tests.conftest import settings_for
from tests.feed_server import FeedServer, Route

SAMPLE_SOURCES = 'sources = ["samples/technology"]'
EXTRA_TITLE = "Harbour Cranes Go Electric"
EXTRA = f"""{EXTRA_TITLE}
The port retired its last diesel cranes this week, a year ahead of plan.
What Changed
Twelve electric cranes now unload every ship, and the quay is quieter at night.
"""


def configure(project: Path, technology: list[str]) -> Settings:
    """Rewrite the technology section's sources in the project's digest.toml."""
    toml = project / "digest.toml"
    text = toml.read_text(encoding="utf-8")
    if SAMPLE_SOURCES in text:
        (project / "digest.toml.orig").write_text(text, encoding="utf-8")
    else:
        text = (project / "digest.toml.orig").read_text(encoding="utf-8")
    assert SAMPLE_SOURCES in text
    toml.write_text(
        text.replace(SAMPLE_SOURCES, f"sources = {json.dumps(technology)}"), encoding="utf-8"
    )
    return settings_for(project)


def extra_folder(project: Path) -> str:
    folder = project / "extra"
    folder.mkdir(exist_ok=True)
    (folder / "cranes.txt").write_text(EXTRA, encoding="utf-8")
    return str(folder)


def configured(settings: Settings) -> set[str]:
    return {c.url for s in settings.sections for c in s.source_configs}


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    assert settings.config_path is not None
    base = ["--config", str(settings.config_path), "--database", str(settings.database)]
    result = CliRunner().invoke(main, [*base, *args])
    return result.exit_code, result.output


def test_a_removed_source_is_no_longer_listed(project: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/down"] = Route(status=503, body=b"down")
    down, extra = feed_server.url("/down"), extra_folder(project)
    before = configure(project, ["samples/technology", extra, down])
    assert cli(before, "collect")[0] == 0
    code, output = cli(before, "sources", "--json")
    assert code == 0, output
    rows = {row["source"]: row["status"] for row in json.loads(output)}
    assert set(rows) == configured(before) and len(rows) == 4
    assert rows[down] == "error" and rows[extra] == "ok"

    after = configure(project, ["samples/technology"])
    assert extra not in configured(after) and down not in configured(after)
    code, output = cli(after, "sources", "--json")
    assert code == 0, output
    rows = {row["source"]: row["status"] for row in json.loads(output)}
    assert set(rows) == configured(after) and len(rows) == 2
    assert set(rows.values()) == {"ok"}
    code, table = cli(after, "sources")
    assert code == 0, table
    assert down not in table and extra not in table and "error" not in table
    with store.opened(after.database) as db:
        listed = health_rows(after.sections, db, after.source_failure_threshold)
    assert {row["source"] for row in listed} == configured(after)


def titles(bodies: list[str]) -> set[str]:
    return {article_from_dict(json.loads(body)).title for body in bodies}


def test_articles_of_a_removed_source_are_not_offered_to_the_next_edition(
    project: Path,
) -> None:
    extra = extra_folder(project)
    before = configure(project, ["samples/technology", extra])
    with store.opened(before.database) as db:
        collected = collect(before.fetch, before.sections, db)
        assert EXTRA_TITLE in {a.title for _section, a in collected.articles}
        offered = lifecycle.candidate(
            db, before.title, before.sections, before.summary, job.local_now(before)
        )
        assert EXTRA_TITLE in {a.title for s in offered.sections for a in s.articles}

    after = configure(project, ["samples/technology"])
    (technology,) = [s for s in after.sections if s.key == "technology"]
    sources = [c.url for c in technology.source_configs]
    with store.opened(after.database) as db:
        unsent = titles(store_articles.unsent_articles(db, "technology", sources))
        assert EXTRA_TITLE not in unsent and len(unsent) == 3
        # Still in the store, unsent: it is left out, not consumed.
        assert EXTRA_TITLE in titles(store_articles.unsent_articles(db, "technology", [extra]))
        offered = lifecycle.candidate(
            db, after.title, after.sections, after.summary, job.local_now(after)
        )
        shown = {a.title for s in offered.sections for a in s.articles}
        assert EXTRA_TITLE not in shown and unsent <= shown
        # What the next send would send (it collects first) agrees.
        following, problems = job.next_edition(after, db)
    assert problems == () and following is not None
    assert {a.title for s in following.sections for a in s.articles} == shown


def test_a_removed_feed_is_not_offered_either(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/kept"] = Route(fs.rss2(fs.items("kept", 1)).encode())
    feed_server.routes["/gone"] = Route(fs.rss2(fs.items("gone", 2)).encode())
    kept, gone = feed_server.url("/kept"), feed_server.url("/gone")
    before = fs.settings_with(tmp_path, {"news": [kept, gone]})
    with store.opened(before.database) as db:
        assert len(collect(before.fetch, before.sections, db).articles) == 3
    after = fs.settings_with(tmp_path, {"news": [kept]})
    with store.opened(after.database) as db:
        offered = lifecycle.candidate(
            db, after.title, after.sections, after.summary, job.local_now(after)
        )
        (row,) = health_rows(after.sections, db, after.source_failure_threshold)
    assert [a.title for s in offered.sections for a in s.articles] == ["kept story 1"]
    assert row["source"] == kept and row["status"] == "ok"
