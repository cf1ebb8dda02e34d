"""Take docs/console.png: the web console at 1280x800 while the bundled models are under load.

    python scripts/console_screenshot.py [--out docs/console.png] [--seconds 30]

Starts `inferencehub up` on the bundled models/ (free ports and a temporary data dir, so the
user's keys and routing are untouched), promotes efficientnet version 1 and starts a canary
rollout of version 2, sends a few hundred predictions from background threads (the example
photos to efficientnet by default routing, now and then the handwriting to ocr), and after
`--seconds` saves what Debian's chromium shows. `--tab try` or `--tab routing` shoots another
panel (the try panel with examples/cat.jpg classified).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.hub import running_hub  # noqa: E402

PHOTOS = ("cat.jpg", "coffee.jpg", "jet.jpg")
CLIENTS = 3
CANARY = {
    "version": "2",
    "ramp": [10, 50, 100],
    "every_s": 20,
    "max_error_rate": 0.05,
    "max_p99_ratio": 5,
    "min_requests": 5,
}


def load(url: str, stop: threading.Event, client_id: int, sent: list[int]) -> None:
    """Predictions until `stop`: a photo to efficientnet, every 25th request OCR."""
    photos = [(ROOT / "examples" / name).read_bytes() for name in PHOTOS]
    handwriting = (ROOT / "examples" / "handwriting.jpg").read_bytes()
    with httpx.Client(base_url=url, timeout=60) as client:
        n = client_id
        while not stop.is_set():
            n += 1
            if n % 25 == 0:
                model, body = "ocr", handwriting
            else:
                model, body = "efficientnet", photos[n % len(photos)]
            client.post(
                f"/v1/models/{model}/predict",
                content=body,
                headers={"content-type": "image/jpeg", "x-routing-key": f"user-{n}"},
            )
            sent[client_id] += 1
            time.sleep(0.05)  # a steady load, not a saturated one


def start_rollout(url: str) -> None:
    """Version 1 stable, then a canary of version 2: the overview shows its step."""
    routing = f"{url}/v1/models/efficientnet/routing"
    promoted = httpx.put(routing, json={"split": {"1": 100}, "labels": {"stable": "1"}})
    promoted.raise_for_status()
    httpx.put(routing, json={"canary": CANARY}).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console.png")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--tab", choices=("overview", "try", "routing"), default="overview")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("error: needs Debian's chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 1
    with (
        tempfile.TemporaryDirectory(prefix="ih-shot-") as tmp,
        running_hub(ROOT / "models", Path(tmp)) as hub,
    ):
        start_rollout(hub.http_url)
        stop = threading.Event()
        sent = [0] * CLIENTS
        threads = [
            threading.Thread(target=load, args=(hub.http_url, stop, i, sent), daemon=True)
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{hub.http_url}/#{args.tab}")
                if args.tab == "try":
                    page.select_option("#try-model", "efficientnet")
                    page.set_input_files("#try-file", ROOT / "examples" / "cat.jpg")
                    page.wait_for_selector("#topk tbody tr")
                page.wait_for_timeout(args.seconds * 1000)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    print(f"{args.out}: {sum(sent)} predictions sent while the console was open")
    return 0


if __name__ == "__main__":
    sys.exit(main())
