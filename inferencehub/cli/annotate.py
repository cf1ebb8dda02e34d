"""`predict --annotate`: the image with what was read drawn on it, for people who would rather
look than read. Pure Pillow; nothing here talks to a hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

BOX_COLOR = (230, 40, 40)
TEXT_COLOR = (255, 255, 255)


def annotate(image: Path, lines: list[dict[str, Any]], out: Path) -> None:
    """Draw each line's box and its text above it (in the image's own coordinates: EXIF
    orientation applied, as the server saw it), and save `out` in the format its suffix names.

    Raises:
        OSError: the image cannot be read or `out` cannot be written.
        ValueError: `out` names a format Pillow cannot write.
    """
    with Image.open(image) as opened:
        picture = ImageOps.exif_transpose(opened).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(2, round(min(picture.size) / 300))
    for line in lines:
        corners = [tuple(point) for point in line["box"]]
        draw.polygon(corners, outline=BOX_COLOR, width=width)
        top = min(y for _, y in corners)
        left = min(x for x, _ in corners)
        height = max(y for _, y in corners) - top
        font = ImageFont.load_default(size=max(10, round(height * 0.6)))
        label = line["text"] or "?"
        x0, y0, x1, y1 = draw.textbbox((left, top), label, font=font, anchor="lb")
        draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=BOX_COLOR)
        draw.text((left, top), label, fill=TEXT_COLOR, font=font, anchor="lb")
    picture.save(out)
