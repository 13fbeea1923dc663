"""Swagger UI in a real browser: headless Chromium, driven over WebDriver.

    python openapi/python/swagger_ui.py http://127.0.0.1:PORT SCREENSHOT.png

Opens /docs, checks that every operation of the served spec is listed, authorizes with an
access token from POST /login, runs POST /todo from the page ("Try it out", Execute) and
sees 201 rendered; the todo is then read back over the API. Saves a screenshot and checks
the page loaded nothing from any host but the server (Swagger UI's assets are built into
it).

Uses Debian's chromium and chromedriver (/usr/bin); selenium-manager never runs, so
nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from urllib.parse import urlsplit

# Belt and braces: should selenium-manager ever be reached, it must not go online.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_STATS", "true")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TITLE = "Added from Swagger UI"
WAIT_SECS = 30


def http_json(method: str, url: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def browser(origin: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--window-size=1280,2000",
        # Only the server's address resolves; any other host fails at once, offline.
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {urlsplit(origin).hostname}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def click(driver: webdriver.Chrome, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def main(base_url: str, screenshot: str) -> None:
    base_url = base_url.rstrip("/")
    _, spec = http_json("GET", f"{base_url}/openapi.json")
    expected = {
        (method.upper(), path, op["operationId"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    status, tokens = http_json(
        "POST", f"{base_url}/login", {"username": "username", "password": "password"}
    )
    assert status == 200, status
    token = tokens["access_token"]

    driver = browser(base_url)
    wait = WebDriverWait(driver, WAIT_SECS)
    try:
        started = time.monotonic()
        driver.get(f"{base_url}/docs")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
        print(f"  /docs rendered in {time.monotonic() - started:.1f}s")

        # Every operation of the spec is on the page, and nothing else.
        shown = set()
        for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
            method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
            path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
                "data-path"
            )
            operation_id = block.get_attribute("id").rsplit("-", 1)[-1]
            shown.add((method.upper(), path, operation_id))
        assert shown == expected, (
            f"missing: {sorted(expected - shown)}; unexpected: {sorted(shown - expected)}"
        )
        print(f"  all {len(expected)} operations are listed")

        # Authorize with the bearer token.
        click(driver, driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize"))
        field = wait.until(
            EC.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux input[type=text]"))
        )
        field.send_keys(token)
        click(
            driver,
            driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize"),
        )
        wait.until(
            EC.presence_of_element_located(
                (By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper button.btn-done")
            )
        )
        click(driver, driver.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done"))
        wait.until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
        print("  authorized with a token from POST /login")

        # POST /todo: expand, Try it out, fill the body, Execute.
        block = driver.find_element(By.ID, "operations-Todos-create_todo")
        click(driver, block.find_element(By.CSS_SELECTOR, ".opblock-summary"))
        click(driver, wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn")))
        body = wait.until(lambda d: block.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
        body.clear()
        body.send_keys(json.dumps({"title": TITLE}))
        click(driver, block.find_element(By.CSS_SELECTOR, "button.execute"))
        status_cell = wait.until(
            lambda d: block.find_element(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            )
        )
        wait.until(lambda d: status_cell.text.strip() != "")
        rendered = status_cell.text.split()[0]
        live_body = block.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_description"
        ).text
        # The picture: the operation, the request Swagger UI sent, and the live 201.
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", block)
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        driver.save_screenshot(screenshot)
        assert rendered == "201", f"Swagger UI rendered {rendered}: {live_body}"
        assert TITLE in live_body, live_body
        print("  POST /todo executed from the page: 201 rendered")

        urls = requested_urls(driver)
    except TimeoutException:
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        driver.save_screenshot(screenshot)
        print(f"timed out; screenshot of the page: {screenshot}", file=sys.stderr)
        raise
    finally:
        driver.quit()

    # The todo really exists, owned by the token's user.
    status, page = http_json("GET", f"{base_url}/todo", token=token)
    assert status == 200 and any(t["title"] == TITLE for t in page["items"]), page

    # Nothing was loaded from anywhere but the server (data: and blob: stay in the page).
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    foreign = [u for u in urls if not (u.startswith(origin) or u.startswith(("data:", "blob:")))]
    assert not foreign, f"the page requested other hosts: {foreign}"
    print(f"  {len(urls)} requests, all to {origin}")
    print(f"Swagger UI check passed; screenshot: {os.path.abspath(screenshot)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: swagger_ui.py BASE_URL SCREENSHOT.png")
    main(sys.argv[1], sys.argv[2])
