"""Debian's Chromium, as the browser tests and the screenshot tool launch it (never a
downloaded browser), and what the labeling tests measure on a phone."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# A phone as the labeling tests hold the pages to it (an iPhone 12 to 15's CSS viewport).
PHONE = {"width": 390, "height": 844}

# How much of the window's height each sticky panel covers, and whether it is sticky at all.
STICKY_PANELS_JS = """() => [...document.querySelectorAll('.sticky-panel')].map((el) => ({
  id: el.id,
  position: getComputedStyle(el).position,
  share: el.getBoundingClientRect().height / window.innerHeight,
}))"""


def phone_context(browser: Any) -> Any:
    """A browser context as a phone gives a page: 390x844, mobile, touch (page.tap works), two
    device pixels to a CSS pixel (so that its screenshots stay sharp in the README)."""
    return browser.new_context(
        viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2
    )


def sticky_panel_share(page: Any) -> float:
    """The largest share of the window's height that a labeling page's sticky panels cover
    (panel.css); fails when the page has none or one of them is not sticky."""
    panels = page.evaluate(STICKY_PANELS_JS)
    assert panels, "the page has no .sticky-panel"
    for panel in panels:
        assert panel["position"] == "sticky", panel
    return max(panel["share"] for panel in panels)
