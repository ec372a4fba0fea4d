"""Fixed editions for the rendering tests and the benchmark: no clock, no files."""

from __future__ import annotations

from digest.model import Edition, EditionArticle, EditionSection, KeyPoint

SUBSCRIBER = {
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "unsubscribe_url": "https://digest.example.org/unsubscribe?token=abc.def",
    "preferences_url": "https://digest.example.org/preferences?token=abc.def",
}


def article(number: int, rank: int, words: int = 40, title: str = "") -> EditionArticle:
    """A plausible article; `words` sets the summary length."""
    summary = " ".join(f"word{(number * 7 + i) % 97}" for i in range(words)) + "."
    return EditionArticle(
        id=f"a{number}",
        title=title or f"Story number {number} about cities, rivers and trains",
        url=f"https://news.example.org/{number}",
        standfirst=f"The standfirst of story {number}, one sentence that sets it up.",
        source="https://news.example.org/feed",
        published="2026-11-28",
        summary=(summary,),
        key_points=(
            KeyPoint("What happened", f"Something happened in story {number}."),
            KeyPoint("Why it matters", bullets=("It changes things.", "People care.")),
        ),
        rank=float(rank),
    )


def edition_of(count: int, words: int = 40, sections: int = 2) -> Edition:
    """`count` articles spread over `sections` sections, ranked in order."""
    keys = [("world", "World"), ("science", "Science"), ("culture", "Culture")][:sections]
    built = []
    for index, (key, title) in enumerate(keys):
        mine = [article(n, n, words) for n in range(count) if n % len(keys) == index]
        built.append(EditionSection(key, title, tuple(mine)))
    return Edition("2026-11-29T0700", "The Test Digest", 42, "2026-11-29T07:00", tuple(built))


def golden_edition() -> Edition:
    """Two sections, emoji, CJK and right-to-left text, a link-less article."""
    world = (
        article(1, 0, 30, "Rivers return to the city 🌊"),
        article(2, 1, 25, "東京の新しい図書館が開館"),
    )
    science = (
        article(3, 2, 20, "מחקר חדש על שינה וזיכרון"),
        EditionArticle("a4", "A note without a link", "", summary=("Only text here.",), rank=3.0),
    )
    return Edition(
        "2026-11-29T0700",
        "The Test Digest",
        42,
        "2026-11-29T07:00",
        (EditionSection("world", "World", world), EditionSection("science", "Science", science)),
    )
