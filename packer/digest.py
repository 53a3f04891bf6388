"""SHA-256 of a file, read in 1 MiB pieces: one helper for build's CodeSha256, vendor's hash-renamed
libraries and `--rootfs TAR` digests, which each had their own loop."""

from __future__ import annotations

import hashlib
import os

from packer.errors import InputError


def file_sha256(path: str | os.PathLike) -> "hashlib._Hash":
    """The running hash object (callers want hex, raw or base64); an unreadable file is an InputError."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    return h
