"""How a run file is reached at the operating-system level, below h5py.

* **One writer per file.**  ``WriterLock`` is an ``flock`` on ``<run>.h5.lock`` beside the
  run file, held for the writer's whole lifetime (the kernel drops it when the process
  dies, however it dies).  HDF5's own file locking is not used for this: the SWMR writer
  must run with it off (readers would lock it out), and it could not name the holder —
  the lock file holds the writer's pid, host and command line.
  A run whose file stops taking writes (a full disk) turns that lock file, whose block
  was reserved when it was taken, into ``<run>.h5.failed``: its status and reason.
* **Superblock facts.**  ``superblock`` reads what the HDF5 superblock (version 2/3, what
  ``libver="latest"`` writes) records: the end-of-file address — a file shorter than
  that was truncated — and the "open for writing" flags a crashed writer leaves.
* **A repaired, read-only view.**  ``RepairedView`` shows h5py the file as HDF5 wrote it:
  zeros past a truncation (so metadata in the lost part fails its checksum at once
  instead of an SWMR read retrying for minutes) and the writer flags cleared (so the file
  opens in plain read mode, with no SWMR retries at all).  Nothing is copied and nothing
  is written: a run file is readable on a full disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from labrig.errors import UserInputError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: how long a writer retries a lock a reader is probing (a probe lasts microseconds)
LOCK_RETRY_S = 0.3
#: bytes reserved in the lock file for the note a run whose writes failed leaves
NOTE_BYTES = 4096


class RunFileBusyError(UserInputError):
    """Another live process is writing the run file."""


# ------------------------------------------------------------------------ writer lock
def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def note_path(path: Path) -> Path:
    """Where a run whose file stopped taking writes records its status and reason."""
    return path.with_name(path.name + ".failed")


def space_left(path: Path) -> tuple[int, str]:
    """(bytes that can still be written at ``path``, what limits it): the free space of
    its file system for this user, or the file-size limit (``ulimit -f``) if lower."""
    path = Path(path)
    where = path if path.is_dir() else path.parent
    st = os.statvfs(where)
    left, why = st.f_bavail * st.f_frsize, f"free space on the disk holding {where}"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        size = path.stat().st_size if path.is_file() else 0
        if limit - size < left:
            left, why = max(limit - size, 0), f"file-size limit (ulimit -f) of {limit} bytes"
    return left, why


def _holder(lock: Path) -> str:
    """'process 1234 on host (labrig run lifetime ...)' from a lock file's text."""
    try:
        text = lock.read_text(encoding="utf-8").rstrip("\0")
        pid, host, command = (text.splitlines() + ["", "", ""])[:3]
    except OSError:
        return "another process"
    if not pid.strip():
        return "another process"
    return f"process {pid.strip()} on {host or '?'}" + (f" ({command})" if command else "")


class WriterLock:
    """The lock a run file's one writer holds from creation (or resume) to close."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = lock_path(self.path)
        self._fd: int | None = None

    def acquire(self, what: str) -> WriterLock:
        """Take the lock or raise ``RunFileBusyError`` naming the process holding it."""
        deadline = time.monotonic() + LOCK_RETRY_S
        while True:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() < deadline:  # a reader's probe, or a real writer
                    time.sleep(0.01)
                    continue
                raise RunFileBusyError(
                    f"{what} {self.path}: refused, {_holder(self.lock)} is writing it "
                    f"(lock {self.lock.name}); wait for that run to end or stop it first"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its previous holder removed it just now: lock the new one
                os.close(fd)
                continue
            command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n{socket.gethostname()}\n{command[:200]}\n".encode())
            with contextlib.suppress(OSError):  # reserve the block a failure note will need
                os.posix_fallocate(fd, 0, NOTE_BYTES)
            self._fd = fd
            return self

    def write_note(self, text: str) -> Path:
        """Turn the lock file into ``<run>.h5.failed`` holding ``text``: written into the
        block reserved when the lock was taken, so it succeeds on a full disk."""
        if self._fd is None:
            raise RuntimeError("the writer lock is not held")
        data = text.encode("utf-8")[:NOTE_BYTES]
        os.pwrite(self._fd, data.ljust(NOTE_BYTES, b"\0"), 0)
        os.ftruncate(self._fd, len(data))
        target = note_path(self.path)
        os.replace(self.lock, target)
        return target

    def release(self) -> None:
        """Remove the lock file, then let go of it (idempotent)."""
        if self._fd is None:
            return
        try:
            self.lock.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def file_version(path: Path) -> list[int] | None:
    """[mtime in ns, size]: what tells a reader that a run file changed since it last
    looked (a run file is only ever appended to and closed, each a new mtime); None: the
    file is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_mtime_ns, stat.st_size]


def writer_alive(path: Path) -> bool:
    """Whether a live process holds ``path``'s writer lock (a microsecond shared probe)."""
    try:
        fd = os.open(lock_path(Path(path)), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a probe that succeeded
    return False


# ------------------------------------------------------------------------ superblock
@dataclass(frozen=True)
class Superblock:
    size: int  # bytes on disk
    end: int  # end-of-file address the superblock records
    width: int  # size of offsets
    flags: int  # file consistency flags (bit 0 write access, bit 2 SWMR write)
    raw: bytes  # the superblock bytes, checksum included

    @property
    def truncated(self) -> bool:
        return self.size < self.end

    @property
    def writer_flags(self) -> bool:
        return bool(self.flags)


def superblock(path: Path) -> Superblock | None:
    """The v2/v3 superblock at the start of ``path``; None for anything else."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(48)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if len(head) < 12 or head[:8] != HDF5_SIGNATURE or head[8] not in (2, 3):
        return None
    width = head[9]
    length = 12 + 4 * width + 4
    if width not in (4, 8) or len(head) < length:
        return None
    start = 12 + 2 * width
    end = int.from_bytes(head[start : start + width], "little")
    return Superblock(size=size, end=end, width=width, flags=head[11], raw=head[:length])


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5 metadata (H5checksum.c);
    no Python package provides it, and it is needed to re-sign a superblock whose
    writer flags are cleared."""
    mask = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & mask

    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & mask
    k = 0
    while length - k > 12:
        a = (a + int.from_bytes(data[k : k + 4], "little")) & mask
        b = (b + int.from_bytes(data[k + 4 : k + 8], "little")) & mask
        c = (c + int.from_bytes(data[k + 8 : k + 12], "little")) & mask
        a = (a - c) & mask
        a ^= rot(c, 4)
        c = (c + b) & mask  # noqa: E702
        b = (b - a) & mask
        b ^= rot(a, 6)
        a = (a + c) & mask  # noqa: E702
        c = (c - b) & mask
        c ^= rot(b, 8)
        b = (b + a) & mask  # noqa: E702
        a = (a - c) & mask
        a ^= rot(c, 16)
        c = (c + b) & mask  # noqa: E702
        b = (b - a) & mask
        b ^= rot(a, 19)
        a = (a + c) & mask  # noqa: E702
        c = (c - b) & mask
        c ^= rot(b, 4)
        b = (b + a) & mask  # noqa: E702
        k += 12
    if length == 0:
        return c
    tail = data[k:].ljust(12, b"\0")
    a = (a + int.from_bytes(tail[0:4], "little")) & mask
    b = (b + int.from_bytes(tail[4:8], "little")) & mask
    c = (c + int.from_bytes(tail[8:12], "little")) & mask
    c ^= b
    c = (c - rot(b, 14)) & mask  # noqa: E702
    a ^= c
    a = (a - rot(c, 11)) & mask  # noqa: E702
    b ^= a
    b = (b - rot(a, 25)) & mask  # noqa: E702
    c ^= b
    c = (c - rot(b, 16)) & mask  # noqa: E702
    a ^= c
    a = (a - rot(c, 4)) & mask  # noqa: E702
    b ^= a
    b = (b - rot(a, 14)) & mask  # noqa: E702
    c ^= b
    c = (c - rot(b, 24)) & mask  # noqa: E702
    return c


def _clean_superblock(sb: Superblock) -> bytes:
    body = bytearray(sb.raw[:-4])
    body[11] = 0
    return bytes(body) + lookup3(bytes(body)).to_bytes(4, "little")


class RepairedView(io.RawIOBase):
    """``path`` read-only as HDF5 wrote it: writer flags cleared, zeros past a cut."""

    def __init__(self, path: Path, sb: Superblock) -> None:
        super().__init__()
        self._file = Path(path).open("rb")
        self._size = sb.size
        self._length = max(sb.size, sb.end)
        self._head = _clean_superblock(sb)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        view[:n] = b"\0" * n
        real = max(0, min(n, self._size - self._pos))
        if real:
            self._file.seek(self._pos)
            got = self._file.readinto(view[:real]) or 0
            view[got:real] = b"\0" * (real - got)  # shrank while being read
        if self._pos < len(self._head):
            m = min(n, len(self._head) - self._pos)
            view[:m] = self._head[self._pos : self._pos + m]
        self._pos += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()
