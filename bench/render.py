"""Compile once, personalise per subscriber: time both in the same run.

Usage: .venv/bin/python bench/render.py [--compiles 10] [--subscribers 20000]
Target: personalising one subscriber costs at least 300 times less than a
full compile of a 12-article edition, and well under 0.1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

from digest.config import Settings
from digest.model import Edition, EditionArticle, EditionSection, KeyPoint
from digest.render import cache as render_cache
from digest.render import compile_edition, personalize
from digest.render.compile import compile_uncached


def twelve_articles() -> Edition:
    sections = []
    for s, (key, title) in enumerate(
        [("world", "World"), ("science", "Science"), ("arts", "Arts")]
    ):
        articles = tuple(
            EditionArticle(
                id=f"{key}-{n}",
                title=f"{title} story {n}: what changed this week and why it matters",
                url=f"https://news.example.org/{key}/{n}",
                standfirst="A one-sentence standfirst that sets the story up for the reader.",
                published="2026-11-28",
                summary=("A summary sentence of moderate length about the story. " * 3,),
                key_points=(
                    KeyPoint("What happened", "Something happened that people noticed."),
                    KeyPoint("What next", bullets=("A vote in March.", "A report in May.")),
                ),
                rank=float(s * 4 + n),
            )
            for n in range(4)
        )
        sections.append(EditionSection(key, title, articles))
    return Edition("2026-11-29T0700", "The Bench Digest", 1, "2026-11-29T07:00", tuple(sections))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiles", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=20000)
    args = parser.parse_args()
    look, edition = Settings(base_url="https://digest.example.org").look, twelve_articles()

    compile_uncached(edition, look)  # warm up imports and Jinja's template cache
    compile_times = []
    for _ in range(args.compiles):
        start = time.perf_counter()
        compiled = compile_uncached(edition, look)
        compile_times.append(time.perf_counter() - start)
    compile_s = statistics.median(compile_times)

    render_cache.clear()
    compile_edition(edition, look)
    start = time.perf_counter()
    compile_edition(edition, look)
    cached_s = time.perf_counter() - start

    start = time.perf_counter()
    for n in range(args.subscribers):
        personalize(
            compiled,
            {
                "name": f"Reader {n}",
                "email": f"reader{n}@example.org",
                "unsubscribe_url": f"https://digest.example.org/unsubscribe?token=t{n}",
                "preferences_url": f"https://digest.example.org/preferences?token=t{n}",
            },
        )
    per_subscriber_s = (time.perf_counter() - start) / args.subscribers

    ratio = compile_s / per_subscriber_s
    print(f"edition: 12 articles, HTML {compiled.html_bytes / 1024:.1f} KB after minifying")
    print(f"full compile (baseline, median of {args.compiles}): {compile_s * 1000:.1f} ms")
    print(f"cached compile (hash of templates + edition): {cached_s * 1000:.2f} ms")
    print(
        f"personalise HTML + text ({args.subscribers} subscribers): "
        f"{per_subscriber_s * 1e6:.1f} us per subscriber"
    )
    verdict = "meets" if ratio >= 300 and per_subscriber_s < 1e-4 else "MISSES"
    print(
        f"ratio: personalising is {ratio:.0f}x cheaper than a compile ({verdict} the 300x target)"
    )


if __name__ == "__main__":
    main()
