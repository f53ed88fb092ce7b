"""Small helpers for stored files: image dimensions, path suffixes, placeholders."""

from __future__ import annotations

import mimetypes
import struct
import zlib
from pathlib import PurePosixPath

from bot.sandbox.models import FileKind

_FALLBACK_SIZE = (800, 600)


def image_size(content: bytes) -> tuple[int, int]:
    """Width and height of a PNG, GIF or JPEG; a plausible default for anything else."""
    if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24:
        width, height = struct.unpack(">II", content[16:24])
        return int(width), int(height)
    if content[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", content[6:10])
        return int(width), int(height)
    if content.startswith(b"\xff\xd8"):
        return _jpeg_size(content) or _FALLBACK_SIZE
    return _FALLBACK_SIZE


def _jpeg_size(content: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(content):
        if content[index] != 0xFF:
            return None
        marker = content[index + 1]
        length = int.from_bytes(content[index + 2 : index + 4], "big")
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", content[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def image_mime(content: bytes) -> str:
    if content.startswith(b"\x89PNG"):
        return "image/png"
    if content[:3] == b"GIF":
        return "image/gif"
    return "image/jpeg"


def suffix_for(kind: FileKind, file_name: str | None, mime_type: str | None) -> str:
    if kind == "photo":
        return ".jpg"
    if file_name and PurePosixPath(file_name).suffix:
        return PurePosixPath(file_name).suffix
    return (mimetypes.guess_extension(mime_type) if mime_type else None) or ""


def guess_mime(file_name: str | None) -> str:
    guessed = mimetypes.guess_type(file_name or "")[0]
    return guessed or "application/octet-stream"


def placeholder_png(
    width: int = 320, height: int = 200, rgb: tuple[int, int, int] = (0x6F, 0xB9, 0xF0)
) -> bytes:
    """A solid-colour PNG, for people in tests who 'send a photo' without one at hand."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    )


def placeholder_document() -> tuple[str, bytes]:
    return "placeholder.txt", "回音 sandbox placeholder document\n".encode()
