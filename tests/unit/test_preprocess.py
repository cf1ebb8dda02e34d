"""Image preprocessing follows model.toml: crop, resize, colour order, layout, normalisation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inferencehub.errors import InvalidRequestError
from inferencehub.worker.preprocess import decode_image, image_to_array, images_to_batch
from inferencehub.worker.repository import PreprocessConfig


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_centre_crop_uses_tf_reference_offsets() -> None:
    # A 10x20 gradient: crop 8/(8+2) of the short side (10) = 8, offset ((20-8)+1)//2 = 6.
    pixels = np.tile(np.arange(20, dtype=np.uint8)[None, :], (10, 1))
    image = Image.fromarray(np.stack([pixels] * 3, axis=-1))
    config = PreprocessConfig(crop_padding=2, resample="nearest")
    array = image_to_array(image, config, 8, 8)
    assert array.shape == (3, 8, 8)
    assert array[0, 0].tolist() == list(range(6, 14))


def test_normalisation_bgr_and_nhwc() -> None:
    image = Image.new("RGB", (4, 4), (10, 20, 30))
    config = PreprocessConfig(color="BGR", layout="NHWC", mean=(1, 2, 3), std=(2, 2, 2))
    array = image_to_array(image, config, 2, 2)
    assert array.shape == (2, 2, 3)
    assert array[0, 0].tolist() == [(30 - 1) / 2, (20 - 2) / 2, (10 - 3) / 2]


def test_grayscale_has_one_channel() -> None:
    array = image_to_array(
        Image.new("RGB", (5, 5), (255, 255, 255)),
        PreprocessConfig(color="L", mean=(0,), std=(255,)),
        3,
        3,
    )
    assert array.shape == (1, 3, 3)
    assert np.allclose(array, 1.0)


def test_batch_of_different_sizes_stacks() -> None:
    images = [encoded(Image.new("RGB", (30, 10))), encoded(Image.new("RGB", (5, 50)), "JPEG")]
    batch = images_to_batch(images, PreprocessConfig(), 4, 6, max_pixels=10_000)
    assert batch.shape == (2, 3, 4, 6)
    assert batch.dtype == np.float32


def test_not_an_image_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequestError, match="could not decode image"):
        decode_image(b"hello", max_pixels=100)


def test_truncated_image_is_a_clear_error() -> None:
    data = encoded(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(InvalidRequestError, match="could not decode image"):
        decode_image(data[: len(data) // 2], max_pixels=1_000_000)


def test_huge_images_are_refused_before_decoding() -> None:
    with pytest.raises(InvalidRequestError, match="100x100 pixels; at most 5000"):
        decode_image(encoded(Image.new("RGB", (100, 100))), max_pixels=5000)
