"""The interactive API documentation: the store's front page links /api/docs, and in a real browser
(Debian's headless Chromium) the page renders every path of the OpenAPI description with Swagger UI,
loading nothing from any host but the store (Swagger UI's files come from the installed package)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from session_store.openapi import OPENAPI
from testkit.browser import start_browser, wait_for
from testkit.http import get
from testkit.ports import free_port

pytestmark = pytest.mark.e2e


def test_the_docs_page_lists_every_path_from_the_store_alone(tmp_path: Path, start_component) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sessions": {"database": str(tmp_path / "s.db")},
                                      "prometheus": {"url": "http://127.0.0.1:9"}}))
    port = free_port()
    start_component("session-store", "session_store", port, config=config)
    store = f"http://127.0.0.1:{port}"
    assert "api/docs" in re.findall(r'href="([^"]+)"', get(f"{store}/")[2].decode()), "linked from the front page"
    expected = set(OPENAPI["paths"])

    browser = start_browser(1280, 1000)
    try:
        browser.get(f"{store}/api/docs")

        def rendered_paths(driver) -> set[str] | None:
            shown = {element.get_attribute("data-path")
                     for element in driver.find_elements("css selector", ".opblock-summary-path")}
            return shown if shown >= expected else None
        shown = wait_for(browser, rendered_paths, timeout=30, interval=0.2, what="every path of the description")
        assert shown == expected
        assert "session store" in browser.find_element("css selector", ".info .title").text.lower()
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);")
        elsewhere = [url for url in loaded if not url.startswith(f"{store}/")]
        assert not elsewhere, f"the page loaded from another host: {elsewhere}"
        assert any(url.endswith("/api/docs/static/swagger-ui-bundle.js") for url in loaded)
        assert any(url.endswith("/api/openapi.json") for url in loaded)
    finally:
        browser.quit()
