"""One owner per checkpoint directory: lock files that work on a shared filesystem.

A run holds ``.fastinit-lock-K-of-N`` (a plain run is part 1 of 1) in the output directory: a
small JSON file with the host, pid, process start time, a random token and the fingerprint of
the checkpoint being written. It is written under a temporary name and hard-linked into place,
so it appears atomically and always complete; ``link`` fails when the name exists, on NFS as on
a local disk, which is why this is a lock file and not ``fcntl``/``flock`` (whose behaviour on
shared filesystems depends on the mount and the lock daemon, and which an NFS client may not
honour across machines). Several parts of one checkpoint (same fingerprint and N) may hold the
directory together; any other pair of runs is refused.

Stale locks: a lock whose host is this host and whose process is gone (or was a different
process with the same pid) is taken over after a kill -9. A lock from another host is never
judged stale here (its pid means nothing on this machine): the error names the lock file, to
be deleted by hand once that run is known to be dead.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import stat

from .manifest import CheckpointError

__all__ = [
    "DirectoryLock",
    "host_name",
    "new_token",
    "create_exclusive",
    "temporary_name",
    "PARTIAL_SUFFIX",
    "LOCK_PREFIX",
]

PARTIAL_SUFFIX = ".fastinit-partial"
LOCK_PREFIX = ".fastinit-lock-"
_LOCK_NAME = re.compile(r"^\.fastinit-lock-(\d+)-of-(\d+)$")
_PID_MAX = 2**31 - 1  # pid_t is a signed 32-bit int (os.kill overflows beyond)
_OPEN_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def host_name() -> str:
    return socket.gethostname()


def new_token() -> str:
    """16 hex digits naming one run: in its lock and in all of its temporary file names."""
    return secrets.token_hex(8)


def temporary_name(filename: str, token: str) -> str:
    """The hidden name under which run ``token`` writes ``filename`` before renaming it.

    >>> temporary_name("model.safetensors", "0123456789abcdef")
    '.model.safetensors.0123456789abcdef.fastinit-partial'
    """
    return f".{filename.lstrip('.')}.{token}{PARTIAL_SUFFIX}"


def token_of_temporary(entry: str) -> str | None:
    """The run token in a temporary file name (None for a name from an older fastinit).

    >>> token_of_temporary(".model.safetensors.0123456789abcdef.fastinit-partial")
    '0123456789abcdef'
    """
    match = re.search(r"\.([0-9a-f]{16})" + re.escape(PARTIAL_SUFFIX) + "$", entry)
    return match.group(1) if match else None


def create_exclusive(path: str, mode: int = 0o644) -> int:
    """A new file's descriptor; fails if anything (a symlink included) is at ``path``."""
    return os.open(path, _OPEN_FLAGS, mode)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _alive(pid: int, start) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return start is None or _start_time(pid) in (None, start)


def _read(path: str):
    """A lock's content: None when there is none, {} when it cannot be read (not a regular file,
    not JSON)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # (before fdopen, which refuses a directory)
            os.close(fd)
            return {}
        with os.fdopen(fd, "rb") as f:
            info = json.loads(f.read(4096))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _is_stale(info: dict) -> bool:
    pid = info.get("pid")
    if info.get("host") != host_name() or isinstance(pid, bool) or not isinstance(pid, int):
        return False
    if not 0 < pid <= _PID_MAX:  # cannot be a process: never judged stale, so the lock is refused
        return False
    return not _alive(pid, info.get("start"))


def _describe(info: dict, name: str) -> str:
    pid = info.get("pid")
    if not info or isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= _PID_MAX:
        return f"(lock file {name} is unreadable)"
    return f"(pid {info.get('pid')} on {info.get('host')}, lock file {name})"


class DirectoryLock:
    """Hold ``directory`` for part ``part = (k, n)`` of the checkpoint ``fingerprint``."""

    def __init__(self, directory: str, part: tuple[int, int], fingerprint: str):
        self.directory, self.part, self.fingerprint = directory, tuple(part), fingerprint
        self.token = new_token()
        self.name = f"{LOCK_PREFIX}{part[0]}-of-{part[1]}"
        self.path = os.path.join(directory, self.name)
        self.held = False

    def _info(self) -> dict:
        return {"host": host_name(), "pid": os.getpid(), "start": _start_time(os.getpid()), "token": self.token,
                "fingerprint": self.fingerprint, "part": list(self.part)}  # fmt: skip

    def _refuse(self, info: dict, name: str):
        raise CheckpointError(
            f"{self.directory} is being written by another fastinit run {_describe(info, name)}; "
            "wait for it to finish, or delete the lock file if that run is dead"
        )

    def _take_over(self, path: str, info: dict) -> None:
        """Remove a stale lock, unless another run replaced it meanwhile."""
        moved = os.path.join(self.directory, temporary_name(os.path.basename(path) + "-stale", self.token))
        try:
            os.rename(path, moved)
        except FileNotFoundError:
            return  # someone else removed it
        if _read(moved) == info:
            os.remove(moved)
            return
        try:  # we took a live lock another run had just created: put it back
            os.link(moved, path)
        finally:
            os.remove(moved)
        self._refuse(_read(path) or {}, os.path.basename(path))

    def _create(self) -> None:
        temp = os.path.join(self.directory, temporary_name(self.name, self.token))
        try:
            fd = create_exclusive(temp)
        except OSError as error:
            raise CheckpointError(
                f"cannot create a lock file in {self.directory}: {os.strerror(error.errno)}"
            ) from None
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self._info(), f)
            for _ in range(3):
                try:
                    os.link(temp, self.path)
                    return
                except FileExistsError:
                    info = _read(self.path)
                    if info is None:
                        continue  # released meanwhile
                    if not _is_stale(info):
                        self._refuse(info, self.name)
                    self._take_over(self.path, info)
                except OSError as error:
                    if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                        raise CheckpointError(
                            f"cannot create the lock file {self.path}: {os.strerror(error.errno or 0)}"
                        ) from None
                    return self._create_without_link()
            self._refuse(_read(self.path) or {}, self.name)
        finally:
            try:
                os.remove(temp)
            except OSError:
                pass

    def _create_without_link(self) -> None:
        """Filesystems without hard links: O_EXCL creation (the content follows at once)."""
        try:
            fd = create_exclusive(self.path)
        except FileExistsError:
            self._refuse(_read(self.path) or {}, self.name)
        with os.fdopen(fd, "w") as f:
            json.dump(self._info(), f)

    def acquire(self) -> DirectoryLock:
        """Take the lock, then check the other runs holding the directory; CheckpointError if one
        may conflict (then nothing is held)."""
        self._create()
        self.held = True
        try:
            for name, info in self.others():
                same = (
                    info.get("fingerprint") == self.fingerprint
                    and info.get("part", [0, 0])[1] == self.part[1]
                )
                if self.part[1] == 1 or not same:
                    self._refuse(info, name)
        except BaseException:
            self.release()
            raise
        return self

    def others(self):
        """(lock name, its content) of every live lock but this run's; stale ones are removed."""
        found = []
        for entry in os.listdir(self.directory):
            if not _LOCK_NAME.match(entry) or entry == self.name and self.held:
                continue
            path = os.path.join(self.directory, entry)
            info = _read(path)
            if info is None:
                continue
            if _is_stale(info):
                self._take_over(path, info)
                continue
            found.append((entry, info))
        return found

    def live_tokens(self) -> set[str]:
        """The tokens of every run now holding the directory (this one included)."""
        return {str(info.get("token")) for _, info in self.others()} | {self.token}

    def check(self) -> None:
        """CheckpointError unless this run still holds its lock (it was not deleted or taken)."""
        if (_read(self.path) or {}).get("token") != self.token:
            raise CheckpointError(
                f"the lock file {self.path} was removed or replaced while this run was writing"
            )

    def release(self) -> None:
        if self.held and (_read(self.path) or {}).get("token") == self.token:
            try:
                os.remove(self.path)
            except OSError:
                pass
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
