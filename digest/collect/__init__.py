"""Collect: feeds, web pages and files become `Article`s; what is new is
stored, with each source's health. A failing source never stops the others.
"""

from digest.collect.files import read_article
from digest.collect.health import health_rows, source_report
from digest.collect.outcome import Problem
from digest.collect.run import Collected, collect, read_source, read_sources

__all__ = [
    "Collected",
    "Problem",
    "collect",
    "health_rows",
    "read_article",
    "read_source",
    "read_sources",
    "source_report",
]
