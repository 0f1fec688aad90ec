"""The browser tooling works end to end: Debian's headless Chromium loads a page from an in-process
aiohttp server, submits its form (POST, then a redirect to the page showing the value), and its
screenshot holds the SVG's blue rectangle where the SVG is, and nowhere else."""
from __future__ import annotations

import asyncio
import time
from typing import Iterator

import pytest
from aiohttp import web
from selenium.webdriver.common.by import By

from testkit.browser import Browser, element_screenshot, pixels_near, screenshot_colors, start_browser, wait_for

pytestmark = pytest.mark.e2e
BLUE = "#1f77b4"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="margin: 0; background: #fff">
  <svg id="chart" width="200" height="100" viewBox="0 0 200 100">
    <rect x="40" y="10" width="120" height="80" fill="{blue}"/>
  </svg>
  <form id="limit" method="post" action="/limit">
    <input id="value" name="value"> <button id="save" type="submit">Save</button>
  </form>
  <p id="posted">{posted}</p>
</body></html>"""


def page_app() -> tuple[web.Application, list[str]]:
    """GET / shows the form; POST /limit records the value and redirects (303) to /limit, which shows it."""
    posted: list[str] = []

    def render(title: str, value: str) -> web.Response:
        return web.Response(text=PAGE.format(title=title, blue=BLUE, posted=value), content_type="text/html")

    async def index(_: web.Request) -> web.Response:
        return render("form", "")

    async def save(request: web.Request) -> web.Response:
        posted.append(str((await request.post())["value"]))
        raise web.HTTPSeeOther("/limit")

    async def shown(_: web.Request) -> web.Response:
        return render("saved", posted[-1] if posted else "")

    app = web.Application()
    app.add_routes([web.get("/", index), web.post("/limit", save), web.get("/limit", shown)])
    return app, posted


@pytest.fixture
def browser() -> Iterator[Browser]:
    started = time.monotonic()
    driver = start_browser(800, 600)
    print(f"\nbrowser started in {time.monotonic() - started:.2f} s")
    yield driver
    driver.quit()


async def test_browser_submits_a_form_and_sees_the_svg_drawn(aiohttp_server, browser: Browser) -> None:
    app, posted = page_app()
    server = await aiohttp_server(app)

    def drive() -> tuple[bytes, bytes]:
        """Blocking WebDriver calls, on a thread: the server answers on this test's event loop."""
        browser.get(str(server.make_url("/")))
        wait_for(browser, lambda d: d.title == "form", what="the form page")
        browser.find_element(By.ID, "value").send_keys("11.5 kW")
        browser.find_element(By.ID, "save").click()
        wait_for(browser, lambda d: d.find_element(By.ID, "posted").text == "11.5 kW", what="the posted value")
        assert browser.current_url == str(server.make_url("/limit"))
        return (element_screenshot(browser, browser.find_element(By.ID, "chart")),
                element_screenshot(browser, browser.find_element(By.ID, "limit")))

    started = time.monotonic()
    chart, form = await asyncio.to_thread(drive)
    print(f"page, form, redirect and screenshots: {time.monotonic() - started:.2f} s")

    assert posted == ["11.5 kW"]
    colors = screenshot_colors(chart)
    scale = sum(colors.values()) / (200 * 100)        # image pixels per CSS pixel: devicePixelRatio squared
    assert scale >= 1, "the SVG's whole 200x100 box must be in the screenshot"
    assert pixels_near(colors, BLUE) == pytest.approx(120 * 80 * scale, rel=0.05), colors.most_common(5)
    assert pixels_near(form, BLUE) == 0
