"""The console's static routes: the page for browsers at `/`, assets under /ui/, strict
headers, revalidation by ETag, no inline code, and no data without a key."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from inferencehub.gateway.auth import Authenticator
from inferencehub.gateway.console import PAGE, SECURITY_HEADERS, load_assets
from inferencehub.gateway.rest import create_app
from inferencehub.keys import KeyStore

HTML = {"accept": "text/html,application/xhtml+xml"}


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://hub")


@pytest.fixture
def app() -> object:
    return create_app(dataplane=None, max_request_bytes=1 << 20)  # type: ignore[arg-type]


async def test_browsers_get_the_page_and_api_clients_the_json_index(app: object) -> None:
    async with client(app) as http:
        page = await http.get("/", headers=HTML)
        index = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert b"<title>InferenceHub</title>" in page.content
    assert page.headers["cache-control"] == "no-cache"
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert index.json()["name"] == "inferencehub"


async def test_assets_are_served_with_types_caching_and_etags(app: object) -> None:
    assets = load_assets()
    assert {"console.js", "console.css"} <= set(assets)
    async with client(app) as http:
        script = await http.get("/ui/console.js")
        again = await http.get("/ui/console.js", headers={"if-none-match": script.headers["etag"]})
        missing = await http.get("/ui/nothing.js")
        traversal = await http.get("/ui/..%2Fconsole.py")
        page_twice = await http.get(f"/ui/{PAGE}")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert script.headers["cache-control"] == "no-cache"  # revalidated: modules never mix
    assert again.status_code == 304 and again.content == b""
    assert missing.status_code == traversal.status_code == page_twice.status_code == 404


class _InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag} {a}=" for a in names if a == "style" or a.startswith("on")]
        self.found += [f"{tag} {a}" for a, v in attrs if v and v.startswith(("http:", "https:"))]


def test_the_page_has_no_inline_code_nor_anything_from_elsewhere() -> None:
    assets = load_assets()
    parser = _InlineCode()
    parser.feed(assets[PAGE].body.decode())
    assert parser.found == []
    for name, asset in assets.items():
        if name.endswith((".js", ".css")):
            # the SVG namespace is a name, not a place the page loads anything from
            text = asset.body.decode().replace("http://www.w3.org/2000/svg", "")
            assert not re.search(r"https?://", text), f"{name} reaches outside the hub"
            assert "console.log" not in text, name


async def test_with_keys_the_files_are_open_and_the_data_is_not(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("admin")
    guarded = create_app(  # type: ignore[arg-type]
        dataplane=None, max_request_bytes=1 << 20, authenticator=Authenticator(store)
    )
    async with client(guarded) as http:
        assert (await http.get("/", headers=HTML)).status_code == 200
        assert (await http.get("/ui/console.css")).status_code == 200
        assert (await http.get("/")).status_code == 401
        assert (await http.get("/v1/status")).status_code == 401
        assert (await http.post("/", headers=HTML)).status_code in (401, 405)
