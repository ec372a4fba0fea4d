"""The compiled email as mail clients read it (most clients, and Outlook for
Windows through its conditional comments), and the checks that show a
fallback for a client's gap is really in the HTML (see caniemail.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lxml import html as lxml_html


@dataclass(frozen=True)
class Views:
    """The email as most clients parse it, and as Outlook for Windows does
    (conditional comments: `[if mso]` parts shown, `[if !mso]` parts gone)."""

    source: str
    dom: lxml_html.HtmlElement
    outlook: lxml_html.HtmlElement


Check = Callable[[Views], list[str]]  # problems found; empty when the fallback holds


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
