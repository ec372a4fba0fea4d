"""The ``digest summarize`` command: summaries of article files or JSONL rows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import click

from digest import job
from digest.cli.common import settings_of
from digest.model import Article, Summary
from digest.summarize import summarize_jsonl


@click.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--jsonl",
    type=click.File("r", encoding="utf-8"),
    help='Read rows {"id", "article"} from this file (- for stdin); write JSON rows.',
)
@click.option("--sentences", type=click.IntRange(min=1), help="Sentences per summary.")
@click.option("--words", type=click.IntRange(min=0), help="Word budget per summary (0: none).")
@click.pass_context
def summarize(
    ctx: click.Context,
    files: tuple[Path, ...],
    jsonl: TextIO | None,
    sentences: int | None,
    words: int | None,
) -> None:
    """Print the summary and key points of article files.

    With --jsonl, read rows {"id", "article"} and print one row
    {"id", "summary": [sentences]} per line instead, for evaluation.

    \b
    Example: digest summarize samples/technology/*.txt
    Example: digest summarize --jsonl eval.jsonl --sentences 3 > ours.jsonl
    """
    options = settings_of(ctx).summary
    options = replace(options, sentences=sentences or options.sentences)
    options = replace(options, article_words=options.article_words if words is None else words)
    if jsonl is not None:
        for row in summarize_jsonl(jsonl, options):
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not files:
        raise click.UsageError("give article FILES, or --jsonl with a JSONL file")
    for article, summary in job.summarize_files(files, options):
        click.echo(_show(article, summary))


def _show(article: Article, summary: Summary) -> str:
    lines = [f"# {article.title}", *summary.sentences]
    for point in summary.key_points:
        lines.append(f"  {point.heading}: {point.text}" if point.text else f"  {point.heading}")
        lines.extend(f"    - {bullet}" for bullet in point.bullets)
    return "\n".join(lines) + "\n"


COMMANDS = (summarize,)
