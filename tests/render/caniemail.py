"""What the email's HTML and CSS features are worth in the mail clients that
matter, from caniemail.com's support data (the hteumeuleu/caniemail
repository, `_features/*.md`, as of its 2026-06 snapshot), and how each gap is
covered.

Support is one letter per client, in CLIENTS order: y (supported), a
(partial or buggy), n (not supported), u (not tested there). A feature that a
listed client lacks or half-supports needs a fallback: a sentence saying what
the template does about it, and where the fallback can be seen in the HTML, a
check that finds it there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.render.html_views import (
    Check,
    Views,
    borders_thin,
    both,
    buttons_have_vml,
    centred_for_outlook,
    columns_mobile_first,
    declarations,
    display_not_for_layout,
    hidden_preheader_only,
    important_only_in_style,
    light_design_inline,
    no_attribute,
    padding_on_cells,
    values_limited,
)

CLIENTS = (
    "Gmail web",
    "Gmail iOS",
    "Gmail Android",
    "Outlook Windows",
    "Outlook.com",
    "Outlook iOS",
    "Outlook Android",
    "Outlook macOS",
    "Apple Mail macOS",
    "Apple Mail iOS",
    "Yahoo Mail",
    "Samsung Email",
)
ALL = "y" * len(CLIENTS)


@dataclass(frozen=True)
class Feature:
    support: str
    fallback: str = ""
    check: Check | None = None

    def gaps(self) -> list[str]:
        return [c for c, s in zip(CLIENTS, self.support, strict=True) if s in "an"]


COLOUR = r"#[0-9a-f]{3,6}|none|transparent"
FEATURES: dict[str, Feature] = {
    "html-table": Feature(ALL),
    "html-div": Feature(ALL),
    "html-p": Feature(ALL),
    "html-span": Feature(ALL),
    "html-strong": Feature(ALL),
    "html-h1-h6": Feature(ALL),
    "html-img": Feature(ALL),
    "html-lists": Feature(
        "aaaaaaaayyay",
        "only plain <ul> and <li>: the gaps are <ol reversed> and <li value>",
        both(no_attribute("ol", "reversed"), no_attribute("li", "value")),
    ),
    "html-style": Feature(
        "aaaayyyyyyyy",
        "Gmail's apps with other accounts drop <style>: link colours, list spacing, the masthead"
        " and the page colours are inline; <style> only adds dark mode and the phone layout",
        light_design_inline,
    ),
    "html-body": Feature(
        "aaayaaanyyay",
        "clients that replace <body> by a <div> still get the page colour from the wrapper <div>",
        light_design_inline,
    ),
    "html-lang": Feature(
        "yyyyyyyyyyay", "Yahoo ignores lang on <td>: none is there", no_attribute("td", "lang")
    ),
    "html-dir": Feature(
        "yyyayyyyyyyy",
        "Outlook mishandles dir on links: none carries one",
        no_attribute("a", "dir"),
    ),
    "html-role": Feature("yyyyyyyyyyay", "roles only help screen readers; losing them is harmless"),
    "html-aria-label": Feature(
        "yyyyyyyyyyny", "the labelled wrapper's content is visible text too; Yahoo reads that"
    ),
    "html-meta-color-scheme": Feature(
        "nnnnnnnnynnn",
        "a hint: where it is ignored the light design shows, complete with inline colours",
        light_design_inline,
    ),
    "css-at-media": Feature(
        "aaanaaaayyaa",
        "mobile first: columns are full width inline and only a min-width query sets them side"
        " by side, so where queries are dropped the email reads as the phone layout",
        columns_mobile_first,
    ),
    "css-at-media-prefers-color-scheme": Feature(
        "nnnnyyyyyyny",
        "dark mode is an addition: without it the inline light design shows",
        light_design_inline,
    ),
    "css-important": Feature(
        "aaaayyyyyyay", "!important only in <style>, in lowercase", important_only_in_style
    ),
    "css-display": Feature(
        "yaaayyyyyyay",
        "only block, inline-block and none are used; in Outlook an inline element styled"
        " display:block is alone in its cell (the table of contents has a row per entry)",
        both(display_not_for_layout, values_limited("display", r"block|inline-block|none")),
    ),
    "css-padding": Feature(
        "yyyayyyyyyyy",
        "in what Outlook reads, padding is on table cells only (the buttons' padded links are"
        " hidden from it behind [if !mso])",
        padding_on_cells,
    ),
    "css-border-radius": Feature(
        "yyynyyyyyyay",
        "Outlook draws each button as a rounded VML shape that is itself the link",
        buttons_have_vml,
    ),
    "css-margin": Feature(
        "aaaaaaaayyay",
        "no negative margins; Outlook centres with a 600 px table instead of margin:auto",
        centred_for_outlook,
    ),
    "css-max-width": Feature(
        "yyyayyyyyyyy", "Outlook gets a fixed 600 px table", centred_for_outlook
    ),
    "css-width": Feature(
        "yyyayyyyyyyy", "Outlook gets widths on tables and cells", centred_for_outlook
    ),
    "css-min-width": Feature("yyynyyyyyyyy", "only inside media queries Outlook ignores anyway"),
    "css-height": Feature(
        "yyyayyyyyyny", "only spacers and images: a min-height (Yahoo) looks the same"
    ),
    "css-max-height": Feature(
        "yyynyyyyyyyy",
        "only on the hidden preheader, which is also display:none",
        hidden_preheader_only,
    ),
    "css-opacity": Feature(
        "yyynyyyyyyyy",
        "only on the hidden preheader, which is also display:none",
        hidden_preheader_only,
    ),
    "css-overflow": Feature(
        "aaanaaaaaaaa",
        "only on the hidden preheader, which is also display:none",
        hidden_preheader_only,
    ),
    "css-line-height": Feature(
        "yyyayyyyyyyy", "unitless line heights; MJML adds mso-line-height-rule for Outlook"
    ),
    "css-font-size": Feature(
        "yyyayyyyyyaa",
        "pixels only, never rem or percentages",
        values_limited("font-size", r"\d+px"),
    ),
    "css-font-weight": Feature(
        "yyyayyyyyyay",
        "600 and 700, which every client shows as bold",
        values_limited("font-weight", r"400|600|700|bold|normal"),
    ),
    "css-font": Feature(ALL),
    "css-letter-spacing": Feature(
        "yyyayyyyyyyy",
        "small positive pixel values only",
        values_limited("letter-spacing", r"\d+px"),
    ),
    "css-text-decoration": Feature(
        "yaaayyyyyyyy",
        "only none on links: where it is dropped a link is underlined",
        values_limited("text-decoration", r"none|underline"),
    ),
    "css-text-align": Feature(
        "yyaayyayyyaa",
        "left, right and center only",
        values_limited("text-align", r"left|right|center"),
    ),
    "css-word-break": Feature("yaayaaaaaana", "break-word only, as a safety for long URLs"),
    "css-vertical-align": Feature(ALL),
    "css-direction": Feature(ALL),
    "css-background-color": Feature(ALL),
    "css-background": Feature(
        "yyyayyyyyyay",
        "plain colours only, never images or gradients",
        values_limited("background", COLOUR),
    ),
    "css-border": Feature("yyyayyyyyyyy", "borders of at most 8 px", borders_thin),
    "css-border-collapse": Feature(ALL),
    "css-border-spacing": Feature("yyynyyynyyyy", "0 on tables that also say cellspacing=0"),
    "css-outline": Feature("yyynyyyyyyyy", "only outline:none on images"),
    "css-word-spacing": Feature("yyynyyyyyyay", "only word-spacing:normal on the body"),
    # caniemail has no page for colour itself: it is the one property every client honours.
    "css-color": Feature(ALL),
}
# CSS properties that belong to one client family (mso-*, -webkit-, -ms-) or
# to Outlook's VML are for that client and judged by it alone.
VENDOR = re.compile(r"^(?:mso-|-webkit-|-ms-|v-text-anchor)")
ALIASES = {
    "font-family": "css-font",
    "font-style": "css-font",
    "border-top": "css-border",
    "border-top-color": "css-border",
    "padding-top": "css-padding",
    "padding-left": "css-padding",
}
TAGS = {
    "ul": "html-lists",
    "ol": "html-lists",
    "li": "html-lists",
    "style": "html-style",
    "table": "html-table",
    "div": "html-div",
    "p": "html-p",
    "span": "html-span",
    "strong": "html-strong",
    "img": "html-img",
    "body": "html-body",
    **{f"h{n}": "html-h1-h6" for n in range(1, 7)},
}
ATTRIBUTES = {
    "lang": "html-lang",
    "dir": "html-dir",
    "role": "html-role",
    "aria-label": "html-aria-label",
}


def features_used(v: Views) -> set[str]:
    """The caniemail features this HTML uses (what Outlook alone sees aside)."""
    found: set[str] = set()
    for element in v.dom.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in TAGS:
            found.add(TAGS[element.tag])
        found.update(ATTRIBUTES[a] for a in element.attrib if a in ATTRIBUTES)
        found.update(_property(p) for p in declarations(element) if not VENDOR.match(p))
    for css in v.dom.xpath("//style/text()"):
        found.update(
            _property(p.lower())
            for p in re.findall(r"([a-zA-Z-]+)\s*:\s*[^;{}]+;?", re.sub(r"@media[^{]*", "", css))
            if not VENDOR.match(p.lower())
        )
        found.update(["css-at-media"] if "@media" in css else [])
        found.update(["css-at-media-prefers-color-scheme"] if "prefers-color-scheme" in css else [])
        found.update(["css-important"] if "!important" in css else [])
    if v.dom.xpath("//style[@media]"):
        found.add("css-at-media")
    if v.dom.xpath("//meta[@name='color-scheme']"):
        found.add("html-meta-color-scheme")
    return found


def _property(name: str) -> str:
    return ALIASES.get(name, f"css-{name}")
