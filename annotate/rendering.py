"""Untrusted markdown (model output, prompts) to HTML that is safe to insert into a page.

Two guards: markdown-it renders with raw HTML disabled and refuses javascript:/data: links,
then nh3 keeps only the tags, attributes and URL schemes listed here.

The parser is markdown-it compiled (markdown-it-pyrs, the `fast` extra) where it is installed:
a labeler's every lease renders a prompt and two responses, and on a response of a kilobyte
the pure-Python markdown-it-py takes milliseconds, more than the rest of the request. Both
are configured to the same rules and give the same HTML (tests/annotate/test_rendering.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

# CommonMark with tables and strikethrough, without its two raw-HTML rules: HTML in the text
# is shown as text.
_RULES = [
    "blockquote", "code", "fence", "heading", "hr", "lheading", "list", "paragraph",
    "reference", "autolink", "backticks", "emphasis", "entity", "escape", "image", "link",
    "newline", "strikethrough", "table",
]  # fmt: skip


def python_renderer() -> Callable[[str], str]:
    md = (
        MarkdownIt("commonmark", {"html": False, "linkify": False})
        .enable("table")
        .enable("strikethrough")
    )
    return md.render


def compiled_renderer() -> Callable[[str], str] | None:
    """The compiled parser's render, or None where the `fast` extra is not installed."""
    try:
        from markdown_it_pyrs import MarkdownIt as CompiledMarkdownIt
    except ImportError:
        return None
    return CompiledMarkdownIt("zero").enable_many(_RULES).render


_render = compiled_renderer() or python_renderer()

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
        _render(text or ""),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# An empty response (an imported judgment may hold one: HH-RLHF prefers saying nothing to a
# harmful answer) renders to nothing, and a blank panel reads as a page that failed to load.
# It is shown as a placeholder of fixed markup, marked with a class for the page's styles; the
# response's text stays "" everywhere else.
EMPTY_RESPONSE_HTML = '<p class="empty-response"><em>(empty response)</em></p>'


def response_to_safe_html(text: str) -> str:
    """A response as safe HTML: markdown_to_safe_html, or the placeholder when it is blank."""
    if not text.strip():
        return EMPTY_RESPONSE_HTML
    return markdown_to_safe_html(text)
