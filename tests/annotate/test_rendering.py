"""Markdown from model output to safe HTML: what labelers see, and that the compiled parser
and the pure-Python one render it alike."""

import pytest

from annotate.rendering import (
    EMPTY_RESPONSE_HTML,
    compiled_renderer,
    markdown_to_safe_html,
    python_renderer,
    response_to_safe_html,
)

CORPUS = [
    "plain text",
    "<script>alert(1)</script>\n\nhi <b>x</b> <img src=x onerror=alert(1)>",
    "[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](data:text/html,<script>1</script>) "
    '<a href="javascript:alert(1)">d</a> [e](vbscript:msgbox)',
    "```python\nif a < b and c > d: print('&amp;')\n```\n\n`x<y` &copy; &#60;",
    "| a | b |\n|---|:-:|\n| 1 | 2 |\n\n~~gone~~ **strong** *em* _em_ __strong__",
    "1. one\n2. two\n   - nested\n\n> quote\n> > deeper\n\n# H1\n## H2\n\nline  \nbreak",
    '<https://x.org> [ok](http://x.org "title") ![img](http://x/y.png) [m](mailto:a@b.org)',
    "Setext\n===\n\n    indented code\n\n---\n\n[ref]\n\n[ref]: http://r.org\n",
    "a\\*b\\* \\<tag\\> unicode: é ü 中文 😀 and a tab\there",
    "<div>\n*not emphasis inside html block?*\n</div>\n\n<!-- comment -->",
    "* [ ] task\n* [x] done\n\nhttp://bare.example.org www.example.org",
    "",
]


@pytest.mark.skipif(compiled_renderer() is None, reason="the `fast` extra is not installed")
@pytest.mark.parametrize("text", CORPUS)
def test_the_compiled_parser_renders_like_the_python_one(text):
    assert compiled_renderer()(text) == python_renderer()(text)


def test_raw_html_in_model_output_is_shown_as_text():
    html = markdown_to_safe_html('<script>alert(1)</script> <b onclick="x()">bold</b>')
    assert "<script" not in html and "<b" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '&lt;b onclick="x()"&gt;bold&lt;/b&gt;' in html


def test_script_links_are_not_links():
    html = markdown_to_safe_html(
        "[a](javascript:alert(1)) [b](data:text/html,x) [c](https://ok.org)"
    )
    assert 'href="javascript' not in html and "[a](javascript:alert(1))" in html
    assert 'href="data:' not in html
    assert 'href="https://ok.org"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_markdown_structure_is_kept():
    html = markdown_to_safe_html("# T\n\n```python\nx = 1 < 2\n```\n\n| a |\n|---|\n| 1 |")
    assert "<h1>T</h1>" in html
    assert '<pre><code class="language-python">x = 1 &lt; 2\n</code></pre>' in html
    assert "<table>" in html and "<td>1</td>" in html


def test_images_are_dropped():
    assert "<img" not in markdown_to_safe_html("![x](http://tracker.example/pixel.png)")


@pytest.mark.parametrize("text", ["", "  \n\t"])
def test_an_empty_response_renders_as_a_marked_placeholder(text):
    assert response_to_safe_html(text) == EMPTY_RESPONSE_HTML
    assert (
        "(empty response)" in EMPTY_RESPONSE_HTML
        and 'class="empty-response"' in EMPTY_RESPONSE_HTML
    )


def test_a_response_that_only_says_empty_response_is_its_own_text():
    assert response_to_safe_html("(empty response)") == "<p>(empty response)</p>\n"
    assert response_to_safe_html("**x**") == markdown_to_safe_html("**x**")
