"""Benchmark: summary quality (ROUGE) against Lead-3, and summariser speed.

Reads a JSONL file of news articles with reference highlights (rows with
``id``, ``article`` and ``reference``), prints ROUGE-1, ROUGE-2 and ROUGE-Lsum
F1 of our extractive summariser and of Lead-3 (the first three sentences)
measured in the same run, on the whole set and on its two halves (even and
odd rows) as a check that a gain is not carried by a few articles, then the
summariser's speed in sentences per second on one core. Last, a table of
the key points of sectioned articles (the samples, and --seed files) beside
the ones the summariser chose before issue 15 (bench/keypoints_before.json).

Example:
    python bench/summaries.py ../shared/eval/cnndm-dev.jsonl \\
        --seed ../shared/seed/000_3bcaae23baa95921.txt
Needs the ``bench`` extra: pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rouge_score import rouge_scorer  # type: ignore[import-untyped]

from digest.collect.files import read_article
from digest.model import KeyPoint
from digest.summarize import (
    ExtractiveSummarizer,
    SummaryOptions,
    article_from_text,
    split_sentences,
)

METRICS = ("rouge1", "rouge2", "rougeLsum")
HERE = Path(__file__).resolve().parent
BEFORE = HERE / "keypoints_before.json"
SAMPLES = HERE.parent / "samples"
Summarise = Callable[[dict[str, Any]], list[str]]


def load_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def reference_sentences(reference: str) -> list[str]:
    # CNN/DailyMail highlights are tokenised text with " . " between them.
    return [s.strip() + " ." for s in reference.split(" . ") if s.strip(" .")]


def rouge(rows: Sequence[dict[str, Any]], summaries: Sequence[list[str]]) -> list[float]:
    """Mean F1 (in points) per metric; Lsum sees one sentence per line."""
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    totals = [0.0] * len(METRICS)
    for row, summary in zip(rows, summaries, strict=True):
        target = "\n".join(reference_sentences(row["reference"]))
        scores = scorer.score(target, "\n".join(summary))
        for i, metric in enumerate(METRICS):
            totals[i] += scores[metric].fmeasure
    return [100 * t / max(len(rows), 1) for t in totals]


def speed(rows: Sequence[dict[str, Any]], summarise: Summarise, rounds: int) -> list[float]:
    """Sentences per second over the whole set, one figure per round."""
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for row in rows:
            summarise(row)
        seconds.append(time.perf_counter() - start)
    # Counted after timing, so that the first round meets the text unseen.
    sentences = sum(len(split_sentences(r["article"])) for r in rows)
    return [sentences / s for s in seconds]


def report(name: str, rows: list[dict[str, Any]], summaries: list[list[str]]) -> None:
    halves = [rouge(rows[i::2], summaries[i::2]) for i in (0, 1)]
    cells = [f"{v:6.2f}" for v in rouge(rows, summaries)]
    half_cells = ["/".join(f"{h[i]:.2f}" for h in halves) for i in range(len(METRICS))]
    print(f"{name:<12}" + "".join(f"{c:>10}" for c in cells) + "   halves " + "  ".join(half_cells))


def shown(text: str, bullets: Sequence[str]) -> str:
    """A key point as one table cell: its sentence and its bullets."""
    cell = text + "".join(f" • {b}" for b in bullets)
    return cell.replace("|", "/") or "(none)"


def key_point_table(paths: Sequence[Path]) -> None:
    """Each headed section's key point before issue 15 and now, side by side."""
    before = json.loads(BEFORE.read_text(encoding="utf-8"))["articles"]
    summarizer = ExtractiveSummarizer(SummaryOptions())
    print("\n| article | section | key point before | key point now |\n|---|---|---|---|")
    for path in paths:
        name = (
            path.name
            if not path.is_relative_to(SAMPLES.parent)
            else str(path.relative_to(SAMPLES.parent))
        )
        article = read_article(path)
        summary = summarizer.summarize(article)
        now: dict[str, KeyPoint] = {p.heading: p for p in summary.key_points}
        old = before.get(name, {}).get("key_points", {})
        for section in article.sections:
            if not section.heading:
                continue
            was = old.get(section.heading, {"text": "", "bullets": []})
            point = now.get(section.heading, KeyPoint(section.heading))
            cells = [name, section.heading, shown(was["text"], was["bullets"])]
            print("| " + " | ".join([*cells, shown(point.text, point.bullets)]) + " |")
        print(
            f"| {name} | *summary* | {' '.join(before.get(name, {}).get('summary', []))} "
            f"| {' '.join(summary.sentences)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="JSONL rows with id, article, reference")
    parser.add_argument("--sentences", type=int, default=3, help="sentences per summary")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the set")
    parser.add_argument(
        "--seed", type=Path, action="append", default=[], help="a sectioned article file"
    )
    args = parser.parse_args()

    rows = load_rows(args.path)
    summarizer = ExtractiveSummarizer(
        SummaryOptions(sentences=args.sentences, article_words=0, key_points=False)
    )

    def ours(row: dict[str, Any]) -> list[str]:
        return list(summarizer.summarize(article_from_text(row["id"], row["article"])).sentences)

    split_sentences("Warm up. The sentence model loads once.")
    rates = speed(rows, ours, args.rounds)  # first round is cold: caches empty
    print(f"{len(rows)} articles, {args.sentences} sentences per summary, ROUGE F1 (stemmed)")
    print(f"{'':<12}" + "".join(f"{m:>10}" for m in METRICS) + "   halves (even/odd rows)")
    report(
        f"lead-{args.sentences}",
        rows,
        [split_sentences(r["article"])[: args.sentences] for r in rows],
    )
    report("ours", rows, [ours(r) for r in rows])
    words = statistics.mean(sum(len(s.split()) for s in ours(r)) for r in rows)
    print(f"ours: {words:.1f} words per summary on average")
    print("speed: " + ", ".join(f"{r:,.0f}" for r in rates) + " sentences/s (first pass cold)")
    samples = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".txt", ".md"))
    key_point_table([*args.seed, *samples])


if __name__ == "__main__":
    main()
