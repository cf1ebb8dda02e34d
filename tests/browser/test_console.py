"""The web console in a real browser: Debian's chromium, driven by Playwright, against a real
`inferencehub up`. Live data renders, a photo is classified, the banner comes and goes with
the hub, keys stay out of URLs, and a phone-sized screen needs no sideways scroll.

Playwright's own browser download is not used (nor reachable): the tests launch the `chromium`
on PATH, which .ci/run installs from Debian. Without it they fail, saying so; they never skip.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Request,
    ViewportSize,
    expect,
    sync_playwright,
)

from inferencehub.keys import KeyStore
from tests.hub import Hub, free_tcp_port, running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
CAT = ROOT / "examples" / "cat.jpg"
CAT_CLASS = re.compile(r"cat|tabby|lynx", re.IGNORECASE)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 20_000  # a poll a second; hubs on a 2-core CI machine can be slow to answer


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the browser tests need Debian's chromium on PATH (apt-get install chromium; "
            ".ci/run installs it). Playwright's own browser download is not used.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The bundled EfficientNet (two versions) alone: the real classifier, a quick start."""
    root = tmp_path_factory.mktemp("console")
    (root / "models").mkdir()
    (root / "models" / "efficientnet").symlink_to(ROOT / "models" / "efficientnet")
    with running_hub(root / "models", root) as hub:
        yield hub


@dataclass
class Console:
    page: Page
    requests: list[Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # script errors, CSP violations


@contextlib.contextmanager
def open_console(
    browser: Browser, hub: Hub, fragment: str = "", viewport: ViewportSize = DESKTOP
) -> Iterator[Console]:
    """The console at the hub's URL in a fresh context (its own sessionStorage). On a normal
    exit, asserts that the page threw nothing, the CSP refused nothing and nothing was asked
    of any other origin."""
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        console = Console(page)
        page.on("request", lambda request: console.requests.append(request))
        page.on("pageerror", lambda error: console.problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                console.problems.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.goto(f"{hub.http_url}/{fragment}")
        yield console
        assert console.problems == []
        # Offline by design: nothing but the hub itself (and the page's own blob: preview).
        elsewhere = [
            r.url
            for r in console.requests
            if not r.url.startswith((f"{hub.http_url}/", "blob:", "data:"))
        ]
        assert elsewhere == []
    finally:
        context.close()


def classify(hub: Hub, version: str, times: int) -> None:
    headers = {"content-type": "image/jpeg"}
    with httpx.Client(base_url=hub.http_url, timeout=60) as client:
        for _ in range(times):
            reply = client.post(
                f"/v1/models/efficientnet/versions/{version}/predict",
                content=CAT.read_bytes(),
                headers=headers,
            )
            assert reply.status_code == 200, reply.text


def cell(page: Page, table: str, key: str, column: int) -> Locator:
    """A cell of a row of one of the overview's tables, by the row's key and column number."""
    return page.locator(f'#{table} tr[data-key="{key}"] > :nth-child({column})')


def test_overview_renders_models_and_traffic_from_live_data(
    bundled: Hub, chromium: Browser
) -> None:
    classify(bundled, "1", 3)
    default = httpx.get(f"{bundled.http_url}/v1/models/efficientnet").json()["default_version"]
    with open_console(chromium, bundled) as console:
        page = console.page
        expect(page.locator("#conn")).to_have_class(re.compile("conn-live"))
        for version in ("1", "2"):
            row = page.locator(f'#models tr[data-key="efficientnet/{version}"]')
            expect(row).to_contain_text("READY")
            expect(row).to_contain_text("CPU")
        expect(cell(page, "models", f"efficientnet/{default}", 2)).to_have_text(f"{default} *")
        for role in ("supervisor", "worker", "gateway"):
            expect(cell(page, "processes", role, 3)).to_have_text("running")
        expect(page.locator("#door")).to_contain_text("off (no API keys)")

        requests = cell(page, "traffic", "efficientnet/1", 10)
        expect(requests).to_have_text("3")
        # More traffic while the page is open: the counts and the rate follow, no reload.
        classify(bundled, "1", 5)
        expect(requests).to_have_text("8")
        expect(cell(page, "traffic", "efficientnet/1", 3)).not_to_have_text("0.0")
        bars = page.locator('#traffic tr[data-key="efficientnet/1"] svg.spark path')
        expect(bars).to_have_attribute("d", re.compile(r"v-(?:[2-9]|1\d)"))  # a bar, not a hairline
        expect(page.locator("#total-requests")).to_have_text("8")

        # Refreshes leave the layout alone: the traffic table stays where it is.
        before = page.locator("#traffic").bounding_box()
        page.wait_for_timeout(2_500)
        assert page.locator("#traffic").bounding_box() == before

        # The tabs follow the keyboard (WAI-ARIA tabs: arrow keys).
        page.locator("#tab-overview").focus()
        page.keyboard.press("ArrowRight")
        expect(page.locator("#tab-try")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#panel-try")).to_be_visible()
        expect(page.locator("#panel-overview")).to_be_hidden()


def test_try_a_model_classifies_a_photo_and_shows_errors(bundled: Hub, chromium: Browser) -> None:
    with open_console(chromium, bundled, "#try") as console:
        page = console.page
        page.select_option("#try-model", "efficientnet")
        page.select_option("#try-version", "1")
        page.set_input_files("#try-file", CAT)
        top = page.locator("#topk tbody tr").first
        expect(top.locator("td.label")).to_have_text(CAT_CLASS)
        expect(page.locator("#topk tbody tr")).to_have_count(5)
        expect(page.locator("#try-answered")).to_have_text("1")
        expect(page.locator("#try-latency")).to_have_text(re.compile(r"^\d+(\.\d)? ms round trip$"))
        expect(page.locator("#try-preview")).to_have_attribute("src", re.compile("^blob:"))

        # Default routing: the same photo again; the version that answered is shown.
        page.select_option("#try-version", "")
        expect(page.locator("#try-status")).to_have_text(re.compile("Answered"))
        expect(page.locator("#try-answered")).to_have_text(re.compile(r"^[12]$"))

        # Not an image: the server's own message, word for word.
        page.set_input_files(
            "#try-file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a png"}
        )
        error = page.locator("#try-error")
        expect(error).to_be_visible()
        served = httpx.post(
            f"{bundled.http_url}/v1/models/efficientnet/predict",
            content=b"not a png",
            headers={"content-type": "image/png"},
        )
        assert served.status_code >= 400
        expect(error).to_have_text(f"{served.status_code}: {served.json()['error']}")


def test_banner_when_the_hub_stops_and_recovery_without_reload(
    repository: Path, tmp_path: Path, chromium: Browser
) -> None:
    ports = ("--http-port", str(free_tcp_port()), "--grpc-port", str(free_tcp_port()))
    with running_hub(repository, tmp_path, *ports) as hub, open_console(chromium, hub) as console:
        page = console.page
        conn = page.locator("#conn")
        expect(conn).to_have_class(re.compile("conn-live"))
        expect(page.locator('#models tr[data-key="scale/1"]')).to_contain_text("READY")
        page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
        main = page.locator("#main").bounding_box()

        hub.stop()
        expect(conn).to_have_class(re.compile("conn-offline"))
        expect(conn).to_contain_text("Cannot reach the hub")
        expect(page.locator("#main")).to_have_class(re.compile("stale"))
        # The last data stays on the page, dimmed, and the banner moved nothing.
        expect(page.locator('#models tr[data-key="scale/1"]')).to_contain_text("READY")
        assert page.locator("#main").bounding_box() == main

        with running_hub(repository, tmp_path, *ports) as again:
            assert again.http_url == hub.http_url
            expect(conn).to_have_class(re.compile("conn-live"), timeout=30_000)
            expect(conn).not_to_contain_text("Cannot reach")
            expect(page.locator("#main")).not_to_have_class(re.compile("stale"))
            assert page.evaluate("() => window.sameDocument") is True
            # Live again: the new hub's processes, not the old ones.
            new_gateway = str(again.children()["gateway"])
            expect(cell(page, "processes", "gateway", 2)).to_have_text(new_gateway)


def test_with_api_keys_the_page_asks_for_one_and_keeps_it_out_of_urls(
    repository: Path, tmp_path: Path, chromium: Browser
) -> None:
    data = tmp_path / "data"
    key = KeyStore(data).create("console")
    wrong = "ih_000000000000_" + "x" * 43
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n')
    with running_hub(repository, tmp_path, "--config", str(config)) as hub:
        with open_console(chromium, hub) as console:
            page = console.page
            expect(page.locator("#key-panel")).to_be_visible()
            expect(page.locator("#conn")).to_have_class(re.compile("conn-locked"))
            expect(page.locator("#conn")).to_contain_text("needs an API key")
            page.fill("#key-input", key)
            page.press("#key-input", "Enter")
            expect(page.locator("#conn")).to_have_class(re.compile("conn-live"))
            expect(page.locator("#key-panel")).to_be_hidden()
            expect(page.locator('#models tr[data-key="scale/2"]')).to_contain_text("READY")
            expect(page.locator("#door")).to_contain_text("on, 1 active keys")
            assert page.evaluate("() => sessionStorage.getItem('inferencehub.apiKey')") == key
            assert page.evaluate("() => localStorage.length") == 0

            # A routing change with the key.
            page.click("#tab-routing")
            card = page.locator("#route-scale")
            card.locator('input[data-version="1"]').fill("70")
            card.locator('input[data-version="2"]').fill("30")
            card.locator("button.apply").click()
            expect(card.locator("p.done")).to_contain_text("split set to 1: 70 %, 2: 30 %")
            expect(card.locator('tr[data-key="1"] .now')).to_have_text("70 %")
            expect(cell(page, "models", "scale/1", 5)).to_have_text("70%")
            policy = httpx.get(
                f"{hub.http_url}/v1/models/scale", headers={"authorization": f"Bearer {key}"}
            ).json()["routing"]
            assert policy["split"] == {"1": 70.0, "2": 30.0}
            authorized = [
                r
                for r in console.requests
                if "/v1/" in r.url and r.all_headers().get("authorization")
            ]
            assert authorized
            assert {r.all_headers()["authorization"] for r in authorized} == {f"Bearer {key}"}

            # A key the hub does not know: the page says so and the change is refused.
            page.click("#key-button")
            page.fill("#key-input", wrong)
            page.press("#key-input", "Enter")
            card.locator('button.promote[data-version="2"]').click()
            expect(card.locator("p.error")).to_contain_text(re.compile(r"Refused \(401\).*API key"))
            expect(page.locator("#conn")).to_have_class(re.compile("conn-locked"))
            expect(page.locator("#key-panel")).to_be_visible()
            policy = httpx.get(
                f"{hub.http_url}/v1/models/scale", headers={"authorization": f"Bearer {key}"}
            ).json()["routing"]
            assert policy["split"] == {"1": 70.0, "2": 30.0}

            urls = [r.url for r in console.requests]
            assert any("/v1/status" in url for url in urls)
            for secret in (key, wrong, key.split("_")[-1]):
                assert not [url for url in urls if secret in url]
        assert key not in hub.output()


def test_a_phone_sized_screen_needs_no_sideways_scroll(bundled: Hub, chromium: Browser) -> None:
    with open_console(chromium, bundled, viewport=PHONE) as console:
        page = console.page
        expect(page.locator('#models tr[data-key="efficientnet/1"]')).to_contain_text("READY")
        for tab in ("overview", "try", "routing"):
            page.click(f"#tab-{tab}")
            expect(page.locator(f"#panel-{tab}")).to_be_visible()
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{tab}: the page is {width} px wide"
        page.click("#tab-try")
        page.set_input_files("#try-file", CAT)
        expect(page.locator("#topk tbody tr").first.locator("td.label")).to_have_text(CAT_CLASS)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
