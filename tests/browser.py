"""Headless Chromium for the report's tests: Debian's ``chromium`` and ``chromium-driver``
(apt; ``.ci/run`` installs them when missing), driven by Selenium with the driver's path
given, so that selenium-manager never tries to download one.

Every network request the page makes is recorded (Chrome's performance log of DevTools
``Network`` events), and none can leave the machine anyway: the host resolver maps every
name to nowhere.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import pytest

CHROMIUM = os.environ.get("PIPELINE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PIPELINE_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1500,1100"]


def start_chromium():
    """(driver, its profile folder). Fails, never skips, when the browser is missing."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} not found: the report's browser tests need Debian's "
                        f"{package} (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    return driver, profile


def stop_chromium(driver, profile: str) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def requests(driver) -> list[dict]:
    """The requests sent since the last call: {url, document} (the page that asked)."""
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            out.append({"url": params["request"]["url"], "document": params.get("documentURL")})
        elif message["method"] == "Network.webSocketCreated":
            out.append({"url": message["params"]["url"], "document": None})
    return out


def wait_for(driver, script: str, timeout: float = 20.0, *args):
    """Poll ``return <script>`` until it is truthy; its value."""
    end = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}", *args)
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)
