"""`inferencehub predict`: one request, from an image file or from .npy tensors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferencehub.cli.common import JsonOption, UrlOption, err, fail, hub, out

if TYPE_CHECKING:
    import numpy as np


def predict(
    image: Annotated[Path | None, typer.Argument(help="An image file (JPEG, PNG, ...).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")] = ...,  # type: ignore[assignment]
    version: Annotated[
        str, typer.Option("--version", "-v", help="Version (default: the model's default).")
    ] = "",
    inputs: Annotated[
        list[str] | None, typer.Option("--input", help="Raw tensor NAME=file.npy (repeatable).")
    ] = None,
    annotate: Annotated[
        Path | None,
        typer.Option(help="Text-reading models: write the image with the boxes and text drawn."),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a model on an image, or on raw tensors with --input."""
    if (image is None) == (not inputs):
        fail("give either an image file or --input NAME=file.npy", 2)
    if annotate is not None and image is None:
        fail("--annotate draws on the image: give an image file", 2)
    if image is not None and not image.is_file():
        fail(f"image file {image} does not exist", 2)
    tensors = dict(_load_npy(spec) for spec in inputs or [])
    with hub(url) as client:
        if image is not None:
            result = client.predict_image(model, image, version)
        else:
            result = client.predict(model, tensors, version)
    from inferencehub.cli.output import render_result, result_to_json, text_lines

    if annotate is not None:
        _annotate(image, text_lines(result), annotate)
    if as_json:
        out.print_json(data=result_to_json(result))
        return
    out.print(render_result(result))


def _annotate(image: Path | None, lines: list[dict[str, Any]] | None, out: Path) -> None:
    """Draw what a text-reading model found; any other model's answer has nothing to draw."""
    assert image is not None
    if lines is None:
        fail("--annotate needs a model that answers text, boxes and scores (e.g. ocr)", 2)
    from inferencehub.cli.annotate import annotate

    try:
        annotate(image, lines, out)
    except (OSError, ValueError) as exc:
        fail(f"cannot write {out}: {exc}")
    err.print(f"wrote {out}")


def _load_npy(spec: str) -> tuple[str, np.ndarray]:
    """NAME=file.npy as (NAME, array); anything else is a usage error (exit 2)."""
    import numpy as np

    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        fail(f"--input expects NAME=file.npy, got {spec!r}", 2)
    try:
        return name, np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path} as a .npy array: {exc}", 2)
