"""What every browser test checks on a page: no axe-core violations (WCAG 2.0,
2.1 and 2.2, A and AA) at desktop and phone widths, with a full-page screenshot
at each. axe runs through ``page.evaluate``, so it works under the site's strict
Content-Security-Policy: no ``bypass_csp``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = (1280, 375)  # desktop, phone
HEIGHT = 900


def check_page(page: Page, name: str, screenshot: Callable[[int], Path]) -> None:
    """No axe violations at each width, and ``screenshot(width)`` saved at each."""
    from axe_playwright_python.sync_playwright import Axe

    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        # From the top, as the page opens: wherever a previous step left the scroll, the
        # sticky "Exit this page" band lies over some target, which axe's target-size
        # rule then reports (GOV.UK's component is sticky by design).
        page.evaluate("window.scrollTo(0, 0)")
        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        violations = [(v["id"], [n["target"] for n in v["nodes"]])
                      for v in results.response["violations"]]
        assert violations == [], f"{name} at {width}px: {violations}"
        page.screenshot(path=str(screenshot(width)), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
