"""Headless Chromium (Debian's package) driven by Playwright, for the report's tests and benchmark.

Playwright cannot download its own browsers here, so it drives /usr/bin/chromium through its
executable path; the Makefile's install step puts it there. The flags keep Chromium off the
network (this machine refuses its background connections) and run it as root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("CCR_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Any]:
    """One browser (a fresh temporary profile); fails with the install command when it is missing."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install it with apt-get install -y chromium (make install does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """An open report page and everything it said: console errors, page errors, requested URLs."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def wait_pairs(self) -> None:
        """Until the pairs browser has drawn the page its controls ask for."""
        self.page.wait_for_function("document.querySelector('#tab-pairs').dataset.busy === '0'")

    def pair_ids(self) -> list[str]:
        return self.page.eval_on_selector_all("#pairs-table tbody tr.pair", "rows => rows.map(r => r.dataset.id)")


def visit(browser: Any, index: Path, fragment: str = "", *, width: int = 1400, height: int = 900) -> Visit:
    page = browser.new_page(viewport={"width": width, "height": height})
    seen = Visit(page)
    page.on("console", lambda m: seen.errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(f"page error: {e}"))
    page.on("request", lambda r: seen.requests.append(r.url))
    page.goto(index.resolve().as_uri() + fragment)
    page.wait_for_function("window.CCR && document.querySelector('#subtitle').textContent.startsWith('/')")
    return seen
