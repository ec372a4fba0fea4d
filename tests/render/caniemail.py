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
from collections.abc import Callable
from dataclasses import dataclass

from lxml import html as lxml_html

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
class Views:
    """The email as most clients parse it, and as Outlook for Windows does
    (conditional comments: `[if mso]` parts shown, `[if !mso]` parts gone)."""

    source: str
    dom: lxml_html.HtmlElement
    outlook: lxml_html.HtmlElement


Check = Callable[[Views], list[str]]  # problems found; empty when the fallback holds


@dataclass(frozen=True)
class Feature:
    support: str
    fallback: str = ""
    check: Check | None = None

    def gaps(self) -> list[str]:
        return [c for c, s in zip(CLIENTS, self.support, strict=True) if s in "an"]


NOT_MSO = re.compile(r"<!--\[if !mso\]><!-->.*?<!--<!\[endif\]-->", re.S)
MSO = re.compile(r"<!--\[if (?:mso|mso \| IE|lte mso \d+)\]>(.*?)<!\[endif\]-->", re.S)
INLINE = ("a", "span", "strong", "em", "b", "i", "img")


def views(source: str) -> Views:
    outlook = MSO.sub(lambda m: m.group(1), NOT_MSO.sub("", source))
    return Views(source, lxml_html.fromstring(source), lxml_html.fromstring(outlook))


def declarations(element: lxml_html.HtmlElement) -> dict[str, str]:
    style = element.get("style") or ""
    pairs = (d.split(":", 1) for d in style.split(";") if ":" in d)
    return {k.strip().lower(): v.strip().lower() for k, v in pairs}


def styled(root: lxml_html.HtmlElement, prefix: str) -> list[tuple[lxml_html.HtmlElement, str]]:
    return [
        (e, v)
        for e in root.iter()
        if isinstance(e.tag, str)
        for k, v in declarations(e).items()
        if k == prefix or k.startswith(prefix + "-")
    ]


def display_not_for_layout(v: Views) -> list[str]:
    # Outlook lays out inline elements inline whatever their display: one that
    # relies on display:block must be alone in its block.
    problems = []
    for element, value in styled(v.outlook, "display"):
        if element.tag in INLINE and value in ("block", "inline-block"):
            parent = element.getparent()
            siblings = [c for c in parent if c is not element and isinstance(c.tag, str)]
            text = (parent.text or "").strip() + "".join((c.tail or "").strip() for c in parent)
            if siblings or text:
                problems.append(f"<{element.tag}> needs display:{value} beside {len(siblings)}")
    return problems


def padding_on_cells(v: Views) -> list[str]:
    allowed = ("td", "th", "ul", "ol")  # lists: Outlook indents them by itself
    return [
        f"padding on <{e.tag}>" for e, _ in styled(v.outlook, "padding") if e.tag not in allowed
    ]


def buttons_have_vml(v: Views) -> list[str]:
    links = [a.get("href") for a in v.dom.iter("a") if "background" in declarations(a)]
    shapes = re.findall(r'<v:roundrect[^>]*href="([^"]+)"', v.source)
    return [] if links and links == shapes else [f"buttons {links} but VML shapes {shapes}"]


def columns_mobile_first(v: Views) -> list[str]:
    columns = v.dom.xpath("//div[contains(@class, 'mj-column-per-')]")
    return [
        f"column {c.get('class')} without width:100%"
        for c in columns
        if declarations(c).get("width") != "100%"
    ] or ([] if columns else ["no columns found"])


def light_design_inline(v: Views) -> list[str]:
    # Without <style> (or without dark mode) the inline design is what shows.
    problems = [
        f"link without an inline colour: {a.get('href')}"
        for a in v.dom.iter("a")
        if "color" not in declarations(a)
    ]
    problems += [
        f"<li> without inline margin: {(li.text or '')[:30]}"
        for li in v.dom.iter("li")
        if "margin" not in declarations(li)
    ]
    mastheads = v.dom.xpath("//div[contains(@class, 'masthead')]")
    if not mastheads or "background-color" not in declarations(mastheads[0]):
        problems.append("the masthead's background is not inline")
    pages = v.dom.xpath("//div[contains(@class, 'page')]")
    if not pages or "background-color" not in declarations(pages[0]):
        problems.append("the page background is not on the wrapper <div>")
    return problems


def centred_for_outlook(v: Views) -> list[str]:
    tables = v.outlook.xpath("//table[@align='center'][@width='600']")
    negative = [e.tag for e, value in styled(v.dom, "margin") if "-" in value]
    return (["no 600 px centred table for Outlook"] if not tables else []) + [
        f"negative margin on <{t}>" for t in negative
    ]


def important_only_in_style(v: Views) -> list[str]:
    inline = [e.tag for e in v.dom.iter() if "!important" in (e.get("style") or "").lower()]
    upper = re.findall(r"!IMPORTANT|!Important", v.source)
    return [f"!important inline on <{t}>" for t in inline] + [f"{u} not lowercase" for u in upper]


def hidden_preheader_only(v: Views) -> list[str]:
    problems = []
    for prop in ("opacity", "overflow", "max-height"):
        for element, _ in styled(v.dom, prop):
            if declarations(element).get("display") != "none":
                problems.append(f"{prop} on a visible <{element.tag}>")
    return problems


def borders_thin(v: Views) -> list[str]:
    widths = [
        int(w) for _, value in styled(v.outlook, "border") for w in re.findall(r"(\d+)px", value)
    ]
    return [f"a {w}px border" for w in widths if w > 8]


def values_limited(prop: str, pattern: str) -> Check:
    def check(v: Views) -> list[str]:
        return [
            f"{prop}:{value} on <{e.tag}>"
            for e, value in styled(v.dom, prop)
            if not re.fullmatch(pattern, value)
        ]

    return check


def no_attribute(tag: str, attribute: str) -> Check:
    def check(v: Views) -> list[str]:
        return [f"{attribute} on <{tag}>" for e in v.dom.iter(tag) if e.get(attribute) is not None]

    return check


def both(*checks: Check) -> Check:
    return lambda v: [p for check in checks for p in check(v)]


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
        display_not_for_layout,
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
