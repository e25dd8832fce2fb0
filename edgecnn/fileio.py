"""Output files: written whole or not at all, with the permissions any other tool would give.

A temp file in the destination folder is filled and renamed over the target, so a crash or
a full disk never leaves half a model behind. ``tempfile.mkstemp`` creates its file with
mode 0600 (private to the owner); the result is chmod-ed to ``0666 & ~umask`` before the
rename, which is what ``open(path, "w")`` would have given, so a web server or another user
can read a converted model wherever the umask allows it.
"""

from __future__ import annotations

import os
import tempfile
import threading

from .errors import InputFileError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask. POSIX can only read it by setting it, so set it back at once (under
    a lock, so two threads writing files never see the temporary 0)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """``0666 & ~umask``: the mode ``open()`` gives a new file."""
    return 0o666 & ~current_umask()


def check_writable(path, force: bool) -> str:
    """Refuse to overwrite ``path`` without ``force``, or to write over a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputFileError(f"{path} is a folder; give an output file name")
    if os.path.exists(path) and not force:
        raise InputFileError(f"{path} exists; pass --force to overwrite it")
    return path


def write_atomic(path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename, mode ``0666 & ~umask``."""
    path = check_writable(path, force)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".edgecnn-", suffix=".tmp", dir=folder)
    except OSError as e:
        raise InputFileError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, default_file_mode())  # the descriptor: f may be any file-like
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise InputFileError(f"cannot write {path}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
