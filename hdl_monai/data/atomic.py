"""Atomic file and folder writes: a reader sees either the old content or the new, never half."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_directory", "OverwriteError"]


class OverwriteError(FileExistsError):
    """Raised when an output exists and the caller did not allow overwriting it."""


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = True) -> Path:
    """Have ``write`` fill a temporary file in ``path``'s folder (it gets the temporary path), then rename
    it onto ``path``: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OverwriteError(f"{path}: exists; pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private (0600); give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON (trailing newline), atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n", overwrite=overwrite)


@contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename.

    An existing ``path`` is refused unless ``overwrite`` is true; then it is moved aside first and
    removed only once the new folder is in place. On an exception the temporary folder is deleted
    and ``path`` is left exactly as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OverwriteError(f"{path}: exists; pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
