"""A real browser for tests: Debian's headless Chromium driven through its chromedriver by Selenium.

Only the Debian packages are used (`apt-get install chromium chromium-driver`): the paths are explicit
and Selenium Manager is switched to offline mode, so nothing downloads a browser or a driver (CI has
no internet beyond package registries). Each browser gets a fresh profile, removed when it quits.

As a pytest fixture (a browser per test; `quit()` also removes the profile):

    @pytest.fixture
    def browser() -> Iterator[Browser]:
        driver = start_browser()
        yield driver
        driver.quit()

or in plain code, `with start_browser() as driver: ...`.

Pages are checked by polling (`wait_for`), never by sleeping, and by their pixels: `element_screenshot`
crops a screenshot to an element, `pixels_near` counts the pixels of about one colour in it, e.g.
`assert pixels_near(element_screenshot(driver, chart), "#1f77b4") >= 500`.

The page's server must not run on the thread that drives the browser: an in-process aiohttp server
lives on the test's event loop, so an async test drives the browser in `asyncio.to_thread`.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import weakref
from collections import Counter
from pathlib import Path
from typing import Callable, TypeVar

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from testkit.env import clean_env
from testkit.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = "chromium chromium-driver"
# No first-run UI, no update, sync or QUIC traffic; no sandbox, as CI runs as
# root; /tmp rather than a small /dev/shm; an sRGB output profile, so a CSS colour is the same
# colour in a screenshot's pixels.
ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--force-color-profile=srgb")

T = TypeVar("T")
Box = tuple[int, int, int, int]          # left, top, right, bottom in image pixels (right, bottom excluded)
RGB = tuple[int, int, int]


class BrowserMissing(RuntimeError):
    """Debian's chromium or chromium-driver is not installed; the message says what to install."""


class Browser(webdriver.Chrome):
    """Selenium's Chrome WebDriver whose `quit()` also removes the profile it started with (as does
    the interpreter's exit, for a browser never quit)."""

    profile: Path
    _remove_profile: weakref.finalize | None = None   # set once started; Chrome() quits a failed start itself

    def quit(self) -> None:
        try:
            super().quit()
        finally:
            if self._remove_profile is not None:
                self._remove_profile()


def start_browser(width: int = 1280, height: int = 900) -> Browser:
    """A headless Chromium with a fresh profile and a `width`x`height` window; `quit()` it (or use it
    as a context manager) to stop both processes and remove the profile."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        raise BrowserMissing(f"{' and '.join(missing)} not found: browser tests need Debian's {PACKAGES}. "
                             f"Run: sudo apt-get install -y --no-install-recommends {PACKAGES}")
    # Selenium Manager (which downloads drivers and browsers) is never needed with explicit paths, and
    # selenium skips it then; should it run anyway, it reads $SE_OFFLINE (checked with 0.4.51): no network.
    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    profile = Path(tempfile.mkdtemp(prefix="testkit-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*ARGUMENTS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(argument)
    log = profile / "chromedriver.log"
    # chromedriver's own port from testkit.ports: selenium's default (bind port 0, close) can be taken
    # by another pytest worker's process before chromedriver binds it
    service = Service(str(CHROMEDRIVER), port=free_port(), log_output=str(log), env=clean_env())
    try:
        driver = Browser(options=options, service=service)
    except WebDriverException as error:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(profile, ignore_errors=True)
        raise RuntimeError(f"{CHROMIUM} did not start under {CHROMEDRIVER}: {error.msg or error}\n{tail}") from error
    driver.profile = profile
    driver._remove_profile = weakref.finalize(driver, stop_and_remove, service, profile)
    return driver


def stop_and_remove(service: Service, profile: Path, timeout: float = 2.0) -> None:
    """Stop chromedriver (which closes its browser; nothing when it already has) and remove the
    profile, again while a browser still shutting down writes into it."""
    service.stop()
    deadline = time.monotonic() + timeout
    while True:
        shutil.rmtree(profile, ignore_errors=True)
        if not profile.exists() or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 10,
             interval: float = 0.05, what: str = "") -> T:
    """Poll `condition(driver)` until it returns something truthy, and return that. A missing or stale
    element means "not yet"; on timeout, TimeoutError names `what` (or the condition) and the page."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition(driver)
            if value:
                return value
        except (NoSuchElementException, StaleElementReferenceException):
            pass
        if time.monotonic() >= deadline:
            name = what or getattr(condition, "__name__", repr(condition))
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {name} on {driver.current_url}")
        time.sleep(interval)


def element_box(driver: WebDriver, element: WebElement) -> Box:
    """Where `element` is in a viewport screenshot, in image pixels (CSS pixels times devicePixelRatio)."""
    rect = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];", element)
    *edges, ratio = rect
    left, top, right, bottom = (round(edge * ratio) for edge in edges)
    return left, top, right, bottom


def element_screenshot(driver: WebDriver, element: WebElement) -> bytes:
    """A PNG of the visible part of `element`: the viewport's screenshot cropped to its box (scrolled
    into view first)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'nearest', inline: 'nearest'});", element)
    box = element_box(driver, element)
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    left, top, right, bottom = box
    cropped = image.crop((max(left, 0), max(top, 0), min(right, image.width), min(bottom, image.height)))
    out = io.BytesIO()
    cropped.save(out, format="PNG")
    return out.getvalue()


def rgb(color: str | RGB) -> RGB:
    """(r, g, b) of "#1f77b4", "1f77b4" or an (r, g, b) tuple."""
    if isinstance(color, tuple):
        return color
    text = color.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def screenshot_colors(png: bytes, region: Box | None = None) -> Counter[RGB]:
    """How many pixels of each colour (alpha dropped) a PNG has, in `region` when given."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if region is not None:
        image = image.crop(region)
    return Counter({color: n for n, color in image.getcolors(max(image.width * image.height, 1)) or ()})


def pixels_near(png: bytes | Counter[RGB], color: str | RGB, tolerance: int = 8, region: Box | None = None) -> int:
    """How many pixels of a PNG (in `region`) or of counted colours are within `tolerance` of `color` in
    every channel (anti-aliased edges aside, a filled shape is exactly its colour: the sRGB profile)."""
    counts = png if isinstance(png, Counter) else screenshot_colors(png, region)
    target = rgb(color)
    return sum(n for pixel, n in counts.items()
               if all(abs(channel - want) <= tolerance for channel, want in zip(pixel, target)))
