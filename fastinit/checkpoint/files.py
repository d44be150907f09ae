"""Opening the files of a checkpoint someone else may have crafted.

A checkpoint directory is untrusted input: an index may name ``/etc/shadow`` or ``../../x``, a
shard may be a symlink leading out of the directory, a FIFO (an ``open`` that never returns) or
a device. Only regular files inside the directory are opened: a member name is a plain file
name, its real path lies in the directory's real path, and the file is opened without following
a final symlink and without blocking, then checked to be a regular file before any read.
"""

from __future__ import annotations

import os
import stat

from .manifest import CheckpointError

__all__ = ["member_path", "open_regular", "read_regular", "shown"]

_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


def shown(text, limit: int = 80) -> str:
    """A name read from a file, safe to print: quoted, escaped, cut to ``limit`` characters."""
    text = ascii(str(text))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def member_path(directory: str, name) -> str:
    """The real path of the file ``name`` (as an index records it) of the checkpoint in
    ``directory``; CheckpointError unless it is a plain name whose file lies inside."""
    if not isinstance(name, str) or not name or name in (".", "..") or "\0" in name:
        raise CheckpointError(f"{directory}: the index names a file {shown(name)}: not a file name")
    if "/" in name or "\\" in name or os.path.isabs(name):
        raise CheckpointError(
            f"{directory}: the index names {shown(name)}: only files in the directory are read"
        )
    root = os.path.realpath(directory)
    real = os.path.realpath(os.path.join(root, name))
    if os.path.dirname(real) != root:
        raise CheckpointError(
            f"{os.path.join(directory, name)}: a link leading out of the checkpoint directory"
        )
    return real


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file at ``path`` (symlinks resolved first, so the
    final open follows none); CheckpointError for a missing file, a FIFO, a device, a directory."""
    real = os.path.realpath(path)
    try:
        fd = os.open(real, _FLAGS)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot open it ({error.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        os.close(fd)
        raise CheckpointError(f"{path}: cannot read it ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CheckpointError(f"{path}: not a regular file")
    return fd


def read_regular(path: str, limit: int) -> bytes:
    """The content of the regular file at ``path``, refused when larger than ``limit`` bytes."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"{path}: larger than {limit} bytes: not a plausible index, manifest or config")
    return data
