"""Colours the email is drawn in, light and dark, and the WCAG contrast that
keeps text readable on them. The brand and accent colours are the user's;
text on them, and the accent in dark mode, are worked out from them.
"""

from __future__ import annotations

# The built-in palette. Text colours meet WCAG AA (4.5:1) on the backgrounds
# they are used on, in both schemes (tests/render/test_layout.py measures it).
LIGHT = {"page": "#eef1f4", "card": "#ffffff", "toc": "#f5f7fa"}
DARK = {"page": "#111418", "card": "#1c2127", "toc": "#262c33"}
TEXT = {"light": "#1f2933", "dark": "#e4e7eb"}
MUTED = {"light": "#52606d", "dark": "#a9b4c0"}
AA = 4.5


def rgb(colour: str) -> tuple[int, int, int]:
    """'#1d3557' or '#fff' as (29, 53, 87)."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def luminance(colour: str) -> float:
    """Relative luminance, as WCAG 2 defines it."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    """WCAG contrast ratio of two colours, from 1 to 21."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """White or the dark text colour, whichever reads better on the background."""
    white = contrast("#ffffff", background)
    return "#ffffff" if white >= contrast(TEXT["light"], background) else TEXT["light"]


def readable(colour: str, backgrounds: tuple[str, ...], minimum: float = AA) -> str:
    """The colour, mixed towards white or black just enough to reach ``minimum``
    against every background (the accent on a dark card, say)."""
    dark = all(luminance(b) < 0.2 for b in backgrounds)
    target = (255, 255, 255) if dark else (0, 0, 0)
    start = rgb(colour)
    for step in range(0, 101, 2):
        mixed = tuple(round(s + (t - s) * step / 100) for s, t in zip(start, target, strict=True))
        candidate = "#{:02x}{:02x}{:02x}".format(*mixed)
        if all(contrast(candidate, b) >= minimum for b in backgrounds):
            return candidate
    return "#ffffff" if dark else "#000000"


def palette(brand: str, accent: str) -> dict[str, str]:
    """Every colour the templates use, derived from the brand and accent."""
    return {
        "color": brand,
        "accent": readable(accent, (LIGHT["card"], LIGHT["toc"])),
        "accent_dark": readable(accent, (DARK["card"], DARK["toc"])),
        "on_color": text_on(brand),
        "on_color_muted": _muted_on(brand),
        "on_accent": text_on(readable(accent, (LIGHT["card"], LIGHT["toc"]))),
        **{f"{name}_light": value for name, value in LIGHT.items()},
        **{f"{name}_dark": value for name, value in DARK.items()},
        "text": TEXT["light"],
        "text_dark": TEXT["dark"],
        "muted": MUTED["light"],
        "muted_dark": MUTED["dark"],
    }


def _muted_on(background: str) -> str:
    """A softer text colour for the masthead's date, when it still reads."""
    softer = "#d9e2ec" if text_on(background) == "#ffffff" else MUTED["light"]
    return softer if contrast(softer, background) >= AA else text_on(background)
