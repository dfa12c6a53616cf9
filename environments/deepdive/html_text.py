"""Readable text from HTML with the standard library: headings, paragraphs, list items and link text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "nav", "noscript", "svg", "template", "iframe", "form", "button", "select", "head"}
_BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "blockquote",
    "pre",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "title",
}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "track", "wbr"}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.prefix = ""
        self.skip = 0
        self.title = ""
        self.in_title = False

    def _break(self) -> None:
        text = " ".join("".join(self.line).split())
        if text:
            self.lines.append(self.prefix + text)
        self.line, self.prefix = [], ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _SKIP and tag not in _VOID:
            self.skip += 1
        if tag in _BLOCKS:
            self._break()
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.prefix = "#" * int(tag[1]) + " "
        elif tag == "li":
            self.prefix = "- "
        elif tag in ("td", "th"):
            self.line.append(" ")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _SKIP and self.skip:
            self.skip -= 1
        elif tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skip:
            self.line.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML document; scripts, styles, navigation and forms are dropped."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader._break()
    text = re.sub(r"\n(#+ )", r"\n\n\1", "\n".join(reader.lines))  # a blank line before each heading
    return " ".join(reader.title.split()), text
