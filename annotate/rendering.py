"""Untrusted markdown (model output, prompts) to HTML that is safe to insert into a page.

Two guards: markdown-it renders with raw HTML disabled and refuses javascript:/data: links,
then nh3 keeps only the tags, attributes and URL schemes listed here.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False})
    .enable("table")
    .enable("strikethrough")
)

# Images are left out: an image URL in model output would make the labeler's browser fetch it.
_TAGS = {
    "a", "p", "br", "hr", "pre", "code", "blockquote", "em", "strong", "del", "s",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}


# Rendering a long response costs milliseconds; a Pair is shown to `redundancy` labelers and
# again on every reload, so recent texts are kept rendered.
@lru_cache(maxsize=1024)
def markdown_to_safe_html(text: str) -> str:
    return nh3.clean(
        _md.render(text or ""),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
