"""Content-addressed storage of uploaded invoice documents.

A document is stored under its SHA-256, the same digest the ledger anchors, at
`root/ab/cd/abcd…` (two levels of fan-out keep directories small). Because the name is the
content, a stored file is never rewritten: storing the same bytes again finds it and writes
nothing. A write goes to a temporary file in the target directory, is fsynced, and is renamed
into place, so a reader sees either the whole document or none, even after a crash. Many
documents stored at once (`put_many`, a bulk upload's statements) are made durable together by
one sync of the file systems instead of two fsyncs each.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["DocumentStore"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_FILE_MODE = 0o640
_DIRECTORY_MODE = 0o750


class DocumentStore:
    """Documents under `root`, each named by the lowercase hex SHA-256 of its bytes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        """Where the document with this digest is (or would be) stored. Anything but 64
        lowercase hex digits is refused, so no digest can name a path outside the store."""
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a lowercase hex SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store `data` unless it is already stored; its digest either way."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if not path.exists():
            self._write(path, data, durable=True)
        return digest

    def put_many(self, items: list[bytes]) -> list[str]:
        """`put` for each of `items`; their digests, in order. The new files are all written
        and renamed into place first, then synced to disk together (os.sync) before this returns."""
        digests = []
        written = False
        for data in items:
            digest = hashlib.sha256(data).hexdigest()
            digests.append(digest)
            path = self.path_for(digest)
            if not path.exists():
                self._write(path, data, durable=False)
                written = True
        if written:
            os.sync()
        return digests

    def _write(self, path: Path, data: bytes, *, durable: bool) -> None:
        """Write `data` to a temporary file beside `path` and rename it into place; `durable`:
        fsync the file before the rename and its directory after it."""
        path.parent.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                os.fchmod(file.fileno(), _FILE_MODE)  # mkstemp's 0o600, and the umask, would decide otherwise
                file.write(data)
                if durable:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        if durable:
            _fsync_directory(path.parent)  # makes the rename itself durable

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """The stored document for reading; FileNotFoundError if there is none."""
        return self.path_for(digest).open("rb")

    def read(self, digest: str) -> bytes:
        """The stored document's bytes; FileNotFoundError if there is none."""
        return self.path_for(digest).read_bytes()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
