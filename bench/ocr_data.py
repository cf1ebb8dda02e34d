"""The OCR bench's pure parts: a seeded set of rendered text images and character error rate.

The set: lines like those on meters, labels and receipts ("TOTAL 12.50", "Lot: A-1234"), one
to three per image, drawn with Pillow's built-in scalable font (`ImageFont.load_default(size)`,
Pillow >= 10.1: no font file is read or fetched) at 18-48 px, dark ink on a light page,
rotated by an angle in [-5, 5] degrees (canvas expanded), then mild Gaussian noise and, for
about half of them, a slight blur. Encoded once as PNG. The same seed gives the same images,
byte for byte, with the same Pillow and zlib.

CER: per image, the lines a pipeline returns (in its reading order) and the truth lines are
each joined with one space and every whitespace run collapsed to one space, so a line found
as two boxes split at a space costs nothing while missing, extra, wrong or reordered text
costs its characters; case and punctuation count. Set CER = edits summed over the images /
truth characters summed over the images.
"""

from __future__ import annotations

import io
import random
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_SIZES = (18, 22, 26, 30, 36, 42, 48)
MAX_ANGLE_DEG = 5.0
NOISE_SIGMA = (3.0, 9.0)  # Gaussian noise, in 8-bit levels, drawn per image
BLUR_RADIUS = (0.4, 0.8)  # applied to about half of the images
MARGIN = 0.8  # page margin around the text, in font sizes
LINE_SPACING = 1.5  # baseline to baseline, in font sizes

ITEMS = (
    "Milk", "Bread", "Coffee", "Apples", "Green Tea", "Rice", "Butter", "Eggs", "Cheese",
    "Water", "Sugar", "Oranges", "Pasta", "Yogurt", "Honey", "Olive Oil", "Flour", "Salt",
)  # fmt: skip
STORES = ("Corner Shop", "Fresh Market", "City Hardware", "Main St Pharmacy", "Depot 24")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _money(rng: random.Random, whole: int = 2) -> str:
    return f"{rng.randint(0, 10**whole - 1)}.{_digits(rng, 2)}"


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))


# One line each: mixed-case words, digits and the punctuation of meters, labels and receipts.
TEMPLATES: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"TOTAL {_money(r)}",
    lambda r: f"Subtotal {_money(r, 3)}",
    lambda r: f"Cash {_money(r)}  Change {_money(r, 1)}",
    lambda r: f"VAT {r.choice((5, 10, 20))}% {_money(r)}",
    lambda r: f"Lot: {_letters(r, 1)}-{_digits(r, 4)}",
    lambda r: f"EXP {r.randint(2026, 2031)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    lambda r: f"Best before {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(26, 31)}",
    lambda r: f"Meter No. {_digits(r, 6)}",
    lambda r: f"{_digits(r, 5)}.{_digits(r, 1)} kWh",
    lambda r: f"Reading: {_digits(r, 4)} m3",
    lambda r: f"Net wt {r.randint(50, 999)} g",
    lambda r: f"Qty {r.randint(1, 9)} x {_money(r, 1)}",
    lambda r: f"SN: {_letters(r, 2)}{_digits(r, 5)}-{_letters(r, 1)}",
    lambda r: f"Batch #{_digits(r, 4)}",
    lambda r: f"Tel. {_digits(r, 3)}-{_digits(r, 4)}",
    lambda r: f"Invoice {r.randint(2024, 2026)}/{_digits(r, 3)}",
    lambda r: f"Model XR-{_digits(r, 3)} 230V 50Hz",
    lambda r: f"Pressure {r.randint(1, 9)}.{_digits(r, 1)} bar",
    lambda r: f"{r.choice(ITEMS)} {_money(r, 1)}",
    lambda r: f"{r.choice(ITEMS)} ({r.randint(1, 5)} kg)",
    lambda r: f"{r.choice(STORES)} #{_digits(r, 3)}",
    lambda r: f"Open {r.randint(6, 10)}am-{r.randint(5, 11)}pm",
    lambda r: "Thank you!",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One rendered image and what is written on it."""

    name: str
    lines: tuple[str, ...]
    png: bytes
    font_px: int
    angle_deg: float
    noise_sigma: float
    blur_radius: float  # 0: not blurred
    width: int
    height: int

    def describe(self) -> str:
        blur = f", blur {self.blur_radius:.1f}" if self.blur_radius else ""
        return (
            f"{self.width}x{self.height}, {self.font_px} px, {self.angle_deg:+.1f}°, "
            f"noise {self.noise_sigma:.1f}{blur}"
        )


def text_lines(rng: random.Random) -> tuple[str, ...]:
    """One to three lines, each from a different template."""
    count = rng.choice((1, 2, 2, 3))
    return tuple(" ".join(t(rng).split()) for t in rng.sample(TEMPLATES, count))


def render(
    lines: Sequence[str],
    font_px: int,
    angle_deg: float,
    noise_sigma: float,
    blur_radius: float,
    noise_seed: Sequence[int],
    ink: tuple[int, int, int] = (20, 20, 20),
    paper: tuple[int, int, int] = (250, 250, 248),
) -> Image.Image:
    """Lines drawn left-aligned on a page, rotated (canvas expanded, filled with the paper
    colour), then blurred (when `blur_radius` > 0) and noised. RGB."""
    font = ImageFont.load_default(size=font_px)
    boxes = [font.getbbox(line) for line in lines]
    margin = round(MARGIN * font_px)
    step = round(LINE_SPACING * font_px)
    width = max(right for _, _, right, _ in boxes) + 2 * margin
    height = step * (len(lines) - 1) + max(bottom for *_, bottom in boxes) + 2 * margin
    page = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * step), line, font=font, fill=ink)
    page = page.rotate(angle_deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)
    if blur_radius > 0:
        page = page.filter(ImageFilter.GaussianBlur(blur_radius))
    noise = np.random.default_rng(list(noise_seed)).normal(
        0.0, noise_sigma, (page.height, page.width, 3)
    )
    pixels = np.asarray(page, dtype=np.float32) + noise
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return rng.randint(low, high), rng.randint(low, high), rng.randint(low, high)


def make_sample(seed: int, index: int) -> Sample:
    """Image `index` of the set `seed`: a function of (seed, index) only, so a subset or a
    larger set shares its first images with the default one."""
    rng = random.Random(f"ocr-bench/{seed}/{index}")
    lines = text_lines(rng)
    font_px = rng.choice(FONT_SIZES)
    angle = round(rng.uniform(-MAX_ANGLE_DEG, MAX_ANGLE_DEG), 1)
    sigma = round(rng.uniform(*NOISE_SIGMA), 1)
    blur = round(rng.uniform(*BLUR_RADIUS), 1) if rng.random() < 0.5 else 0.0
    ink, paper = _colour(rng, 0, 70), _colour(rng, 225, 255)
    image = render(lines, font_px, angle, sigma, blur, (seed, index), ink, paper)
    return Sample(
        name=f"s{seed}-{index:03d}",
        lines=lines,
        png=encode_png(image),
        font_px=font_px,
        angle_deg=angle,
        noise_sigma=sigma,
        blur_radius=blur,
        width=image.width,
        height=image.height,
    )


def make_set(count: int, seed: int) -> list[Sample]:
    return [make_sample(seed, i) for i in range(count)]


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalise(lines: Iterable[str]) -> str:
    """Lines joined by one space, whitespace runs collapsed, ends stripped."""
    return " ".join(" ".join(lines).split())


def char_errors(truth: Iterable[str], found: Iterable[str], spaces: bool = True) -> tuple[int, int]:
    """(edits, truth characters) for one image, both sides normalised; with `spaces` false,
    all whitespace is dropped first (a recogniser's dropped or extra spaces then cost
    nothing: the report shows both, to tell such misses from wrong characters)."""
    want, got = normalise(truth), normalise(found)
    if not spaces:
        want, got = want.replace(" ", ""), got.replace(" ", "")
    return levenshtein(want, got), len(want)


def cer(pairs: Iterable[tuple[Iterable[str], Iterable[str]]], spaces: bool = True) -> float:
    """Character error rate of a set of (truth lines, found lines): summed edits / summed
    truth characters (not a mean of per-image rates, so long images weigh more)."""
    edits = chars = 0
    for truth, found in pairs:
        e, n = char_errors(truth, found, spaces)
        edits += e
        chars += n
    return edits / chars if chars else 0.0
