"""Encoded image -> input tensor, as a model.toml's [preprocess] says (Pillow + numpy)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from inferencehub.errors import InvalidRequestError
from inferencehub.worker.repository import PreprocessConfig

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open an encoded image, refusing non-images and decompression bombs before decoding.

    Raises:
        InvalidRequestError: not a decodable image, or larger than `max_pixels`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidRequestError(
                    f"image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
                )
            image.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise InvalidRequestError(
            f"could not decode image ({type(exc).__name__}); expected JPEG, PNG, BMP, GIF, "
            "TIFF or WebP bytes"
        ) from None
    return image


def image_to_array(
    image: Image.Image, config: PreprocessConfig, height: int, width: int
) -> np.ndarray:
    """Crop, resize and normalise one image to float32 CHW (or HWC) for the model."""
    mode = "L" if config.color == "L" else "RGB"
    image = image.convert(mode)
    if config.crop_padding is not None:
        short = min(image.size)
        crop_w = int(width / (width + config.crop_padding) * short)
        crop_h = int(height / (height + config.crop_padding) * short)
        left = (image.width - crop_w + 1) // 2
        top = (image.height - crop_h + 1) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    image = image.resize((width, height), _RESAMPLE[config.resample])
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if config.color == "BGR":
        pixels = pixels[:, :, ::-1]
    channels = pixels.shape[2]
    mean = np.asarray(config.mean[:channels], dtype=np.float32)
    std = np.asarray(config.std[:channels], dtype=np.float32)
    pixels = (pixels - mean) / std
    if config.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)


def images_to_batch(
    encoded: list[bytes], config: PreprocessConfig, height: int, width: int, max_pixels: int
) -> np.ndarray:
    """Decode and preprocess a batch of encoded images into one [N, ...] float32 array."""
    return np.stack(
        [image_to_array(decode_image(data, max_pixels), config, height, width) for data in encoded]
    )
