"""The user documentation holds together: every relative link and anchor in README.md, docs/ and
bench/RESULTS.md resolves, the README stays a front door, and no user page carries a commit
hash or a machine's load (those belong to bench/RESULTS.md, the dated lab notebook).

External links (anything with a scheme) are not followed: the suite runs offline."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USER_PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
ALL_PAGES = [*USER_PAGES, ROOT / "bench" / "RESULTS.md"]

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

# A commit hash is 7 to 40 hex digits. Requiring at least one digit and one letter keeps out
# numbers (20261202) and words made of a-f (accede); the lookbehind keeps out colours (#a1b2c3d4).
# An abbreviated hash of letters only slips through: rare enough to accept for a simple check.
COMMIT_HASH = re.compile(r"(?<![#\w])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?!\w)")
# How busy the machine was is a fact about a sitting, not about the software.
MACHINE_LOAD = re.compile(r"\bload average\b|\bat (?:a )?load\b|\bload \d|\bthis session\b", re.I)


def prose(text: str) -> str:
    """The text a reader sees as prose and links: fenced blocks and code spans blanked out (a
    `[x](y)` inside code is an example, not a link)."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub("", text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: inline markup reduced to its text, lower case, every
    character but letters, digits, `_`, `-` and spaces dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page offers: its headings' slugs (a repeated slug gets -1, -2, ... as on
    GitHub) and explicit HTML ids."""
    text = page.read_text(encoding="utf-8")
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    text = prose(page.read_text(encoding="utf-8"))
    return [
        *INLINE_LINK.findall(text),
        *REFERENCE_DEFINITION.findall(text),
        *HTML_LINK.findall(text),
    ]


def broken(page: Path, target: str) -> str | None:
    """Why a relative link from `page` does not resolve, or None when it does."""
    path, _, anchor = target.partition("#")
    destination = (page.parent / unquote(path)).resolve() if path else page
    if not destination.exists():
        return f"{page.name}: {target}: no such file"
    if anchor and destination.suffix == ".md" and unquote(anchor) not in anchors(destination):
        return f"{page.name}: {target}: no heading with that anchor"
    return None


def test_the_helpers_read_markdown_as_github_does(tmp_path):
    assert github_slug("Background training (Celery)") == "background-training-celery"
    assert github_slug("Training speed against TRL's RewardTrainer") == (
        "training-speed-against-trls-rewardtrainer"
    )
    assert github_slug("`make run` in detail") == "make-run-in-detail"
    assert github_slug("Faults: nothing lost, nothing stuck") == "faults-nothing-lost-nothing-stuck"
    page = tmp_path / "page.md"
    page.write_text(
        "# Notes\n\n## Notes\n\nSee [a](other.md#x), ![b](img.png) and `[c](code.md)`.\n\n"
        '```sh\n[d](fenced.md)\n```\n\n[e]: ref.md\n<img src="pic.png" alt="">\n'
    )
    assert anchors(page) == {"notes", "notes-1"}
    assert sorted(links(page)) == ["img.png", "other.md#x", "pic.png", "ref.md"]
    assert broken(page, "#notes-1") is None
    assert broken(page, "#nowhere") is not None
    assert broken(page, "missing.md") is not None
    assert COMMIT_HASH.findall("580cdca and f9fb159, not 20261202, #a1b2c3d4, accede") == [
        "580cdca",
        "f9fb159",
    ]


def test_every_relative_link_and_anchor_resolves():
    checked = 0
    with_anchor = 0
    failures = []
    for page in ALL_PAGES:
        for target in links(page):
            if SCHEME.match(target):
                continue
            checked += 1
            with_anchor += "#" in target
            if reason := broken(page, target):
                failures.append(reason)
    assert failures == []
    # A parser that finds nothing would pass the check above: the pages hold well over this.
    assert checked >= 50 and with_anchor >= 15, (checked, with_anchor)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in links(README)
        if not SCHEME.match(target)
    }
    assert [p.name for p in USER_PAGES[1:] if p.resolve() not in linked] == []


def test_the_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    sections = [h for h in HEADING.findall(FENCE.sub("", text)) if h]
    # The two commands (what CI runs is `make test`), then the glossary, before anything long.
    assert sections[1:3] == ["The two commands", "Glossary"], sections
    assert "make run " in text and "make test " in text


def test_user_pages_carry_no_commit_hashes_or_machine_loads():
    found = {
        str(page.relative_to(ROOT)): hits
        for page in USER_PAGES
        if (hits := COMMIT_HASH.findall(text := page.read_text(encoding="utf-8")))
        + MACHINE_LOAD.findall(text)
    }
    assert found == {}
