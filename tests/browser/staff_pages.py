"""Every staff page of a project, opened in a real Chromium at a given width: a full-page
screenshot, a check that nothing overflows the viewport sideways, and each page's main
figures. The browser tests use it on the loop demo; run as a script, it photographs a running
server (the README's screenshots):

    make run        # in another terminal; wait until loop-demo's first model is trained
    .venv/bin/python -m tests.browser.staff_pages --out annotate/static/annotate/screenshots \
        --pages training,quality --widths 1280 --screenful

Screenshots go to --out (a temporary folder when not given) as <page>-<width>.png, reduced to
256 colours so that the committed ones stay small.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS

WIDTHS = (1280, 390)
HEIGHT = {1280: 900, 390: 844}


@dataclass(frozen=True)
class StaffPage:
    name: str
    path: str
    # CSS selectors of the page's main figures: each must match a visible element with text
    # (a chart's text is its labels).
    figures: tuple[str, ...]


def staff_pages(*, slug: str, labeler_id: int) -> list[StaffPage]:
    return [
        StaffPage("home", "/", (".staff-projects tbody tr", ".projects .mine")),
        StaffPage(
            "training",
            f"/projects/{slug}/training/",
            (
                "#pair-counts",
                "#versions tr[data-version]",
                "#versions .metrics-chart",
                "#runs tr[data-run]",
                "#queue tr[data-pair]",
            ),
        ),
        StaffPage(
            "quality",
            f"/projects/{slug}/quality/",
            (
                "#pair-counts",
                "#progress .figure b",
                "#agreement tbody td",
                "#labelers tbody tr[id^=labeler-]",
                "#labelers .flag",
                "#bias svg",
                "#leaderboard svg",
                "#leaderboard .matrix td",
            ),
        ),
        StaffPage("review", f"/projects/{slug}/review/", (".review-item", "form.resolve")),
        StaffPage(
            "import", f"/projects/{slug}/import/", ("#pair-counts", "form.import-form", "tbody tr")
        ),
        StaffPage(
            "export",
            f"/projects/{slug}/export/",
            ("#pair-counts", "form.export-form select[name=format]", "label.check"),
        ),
        StaffPage(
            "labeler",
            f"/projects/{slug}/quality/labelers/{labeler_id}/",
            ("#labeler-figures .figure b", "#labeler-flags .flag", "#labeler-judgments tbody tr"),
        ),
    ]


# Elements inside a box that scrolls sideways (a wide table's .table-wrap) are measured by
# that box: the table may scroll within it, the page must not.
OVERFLOW_JS = """() => {
  const vw = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const scrolls = (el) => ['auto', 'scroll', 'hidden'].includes(getComputedStyle(el).overflowX);
  const wide = [];
  const walk = (el) => {
    for (const child of el.children) {
      const r = child.getBoundingClientRect();
      if ((r.width || r.height) && (r.right > vw + 0.5 || r.left < -0.5)) {
        wide.push(name(child) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
      }
      if (!scrolls(child)) walk(child);
    }
  };
  walk(document.body);
  const scrolled = [...document.querySelectorAll('.table-wrap')]
    .filter((w) => w.scrollWidth > w.clientWidth + 1).map(name);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: vw, wide, scrolled};
}"""


def log_in(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_url(f"{base_url}/")


def visit(
    page: Any,
    base_url: str,
    staff_page: StaffPage,
    width: int,
    out_dir: Path,
    *,
    full_page: bool = True,
) -> dict:
    """Open the page at this width, photograph it (whole, or the first screenful), and report
    what overflows and which main figures are missing."""
    page.set_viewport_size({"width": width, "height": HEIGHT.get(width, 900)})
    page.goto(base_url + staff_page.path)
    page.wait_for_load_state("load")
    shot = out_dir / f"{staff_page.name}-{width}.png"
    page.screenshot(path=str(shot), full_page=full_page)
    report = page.evaluate(OVERFLOW_JS)
    missing = []
    for selector in staff_page.figures:
        found = page.locator(selector)
        if not found.count() or not found.first.is_visible():
            missing.append(selector)
        elif not (found.first.text_content() or "").strip():
            missing.append(f"{selector} (empty)")
    return {**report, "missing": missing, "screenshot": shot}


def reduce_colours(path: Path) -> None:
    """256 colours, as PNG: a screenshot of flat UI loses nothing visible and shrinks ~4x."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            path, optimize=True
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--slug", default="loop-demo")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin-demo-pass")
    parser.add_argument("--labeler", default="quinn", help="whose labeler page to photograph")
    parser.add_argument("--out", type=Path, help="folder for the PNGs (default: a temp folder)")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    parser.add_argument("--pages", help="comma-separated page names (default: all)")
    parser.add_argument(
        "--screenful", action="store_true", help="only the first screenful of each page"
    )
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="prefloop-screens-"))
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    failures = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        log_in(page, args.base_url, args.username, args.password)
        page.goto(f"{args.base_url}/projects/{args.slug}/quality/")
        link = page.locator(f"#labelers a:text-is('{args.labeler}')")
        labeler_id = int(link.get_attribute("href").rstrip("/").rsplit("/", 1)[1])
        for width in (int(w) for w in args.widths.split(",")):
            for staff_page in staff_pages(slug=args.slug, labeler_id=labeler_id):
                if args.pages and staff_page.name not in args.pages.split(","):
                    continue
                report = visit(
                    page, args.base_url, staff_page, width, out, full_page=not args.screenful
                )
                reduce_colours(report["screenshot"])
                problems = report["wide"] + [f"missing {m}" for m in report["missing"]]
                failures += bool(problems)
                print(f"{report['screenshot']}: {'; '.join(problems) or 'ok'}")
        browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
