"""Media hygiene shared by every channel: images are re-encoded so that EXIF,
GPS and other metadata never travel from an employee to a confidant."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

MAX_MEDIA_BYTES = 20 * 1024 * 1024
"""Largest file the bot relays (Telegram's own download limit for bots)."""


class MediaRejected(Exception):
    """The file cannot be relayed; ``reason`` is a message key for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def scrub_image(data: bytes) -> tuple[bytes, str]:
    """Re-encode an image from its pixels only, dropping every metadata block.

    Returns the new bytes and their MIME type: PNG stays PNG (transparency),
    everything else becomes JPEG.  Raises `MediaRejected` for non-images or
    oversized input, so a crafted file never reaches a confidant unexamined.
    """
    if len(data) > MAX_MEDIA_BYTES:
        raise MediaRejected("media.too_large")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            fmt = img.format
            # Copy pixels into a fresh image: no info dict, no EXIF, no ICC text chunks.
            mode = img.mode if img.mode in ("RGB", "RGBA", "L", "LA") else "RGBA"
            clean = Image.new(mode, img.size)
            clean.paste(img.convert(mode))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaRejected("media.not_an_image") from exc
    out = io.BytesIO()
    if fmt == "PNG" or mode in ("RGBA", "LA"):
        clean.save(out, format="PNG", optimize=False)
        return out.getvalue(), "image/png"
    clean.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue(), "image/jpeg"
