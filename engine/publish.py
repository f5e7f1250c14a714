"""Publishing a result folder in one atomic step that never replaces what it may not.

A run claims its destination `DIR/NAME` before any slow work (`claim`): an exclusive lock
on `DIR/.NAME.lock`, which the OS drops when the process ends, even on kill -9. So a
second run into the same folder fails at once (exit 2) instead of after its fit, and
whatever `.NAME.partial-*` staging folder or `.NAME.old-*` journal folder is found while
holding the lock was left by a dead run: the claim removes it (putting an interrupted
--force's old folder back when the new one never arrived). Claiming also proves that
the folder is writable.

The result is written into a staging folder beside NAME and published (`publish`) by one
rename that never replaces an existing folder without --force (Linux renameat2
RENAME_NOREPLACE; elsewhere the rename goes onto an empty folder made by mkdir, which
fails if NAME exists). With --force the old folder stays visible until the new one is in
place: RENAME_EXCHANGE swaps them atomically on Linux; elsewhere two renames with a
journal (`.NAME.old-PID`) that the next claim completes if the run dies in between.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadInputError

# renameat2 flags (linux/fs.h).
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial-|old-|lock$)")
LOCK_MARK = b"ganfit engine lock, pid"  # what a lock file holds: only such files are swept
# Free space asked for up front: a preview result is about 6 MB, a high one with all its
# maps a few tens of MB; failing before the fit beats failing after it.
MIN_FREE_BYTES = 64 * 2**20


class DestinationTaken(OSError):
    """The destination appeared while this run was working."""


@dataclass
class Claim:
    """This process's hold on a destination: the lock file and its open descriptor."""

    lock_path: Path
    fd: int


_claims: dict[Path, Claim] = {}


# ----------------------------------------------------------------------------- locks


def _lock_fd(fd: int) -> None:
    """Exclusive lock without waiting; OSError (BlockingIOError) if another holds it."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _try_lock(path: Path) -> int | None:
    """Open (or create) `path` and lock it: its descriptor, or None if a live process holds
    it. A lock file can be removed by its holder right after we opened it; then we would
    hold a lock on a file nobody else sees, so the inode is compared and the step retried."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                os.ftruncate(fd, 0)
                os.write(fd, LOCK_MARK + f" {os.getpid()}\n".encode())
            except OSError:
                _unlock(path, fd)
                raise
            return fd
        os.close(fd)


def _unlock(path: Path, fd: int) -> None:
    """Remove the lock file, then release it (POSIX: removed while still held, so no one
    can lock a file that is about to vanish; Windows cannot remove an open file, so there
    it is closed first)."""
    try:
        os.unlink(path)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    os.close(fd)


# ----------------------------------------------------------------------------- claims


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def claim(out: Path, force: bool) -> Claim:
    """Reserve `out` for this process before any slow work; idempotent within a process.

    Raises BadInputError (exit 2) when the folder for `out` is missing, not writable or
    nearly full, when another live run is writing `out`, or when `out` exists and `force`
    is False.
    Leftovers of dead runs beside `out` are cleaned up first.
    """
    out = Path(os.path.abspath(out))
    if out in _claims:
        return _claims[out]
    parent = out.parent
    if not parent.is_dir():
        raise BadInputError(f"the folder {parent} for --out does not exist")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out} exists and is not a folder")
    if out.exists() and not force:
        raise BadInputError(f"{out} already exists; choose another --out or pass --force")
    path = lock_path(out)
    try:
        fd = _try_lock(path)
    except OSError as error:
        raise BadInputError(f"cannot write in {parent} for --out: {error.strerror or error}") \
            from error
    if fd is None:
        raise BadInputError(f"another engine run is writing {out} right now; wait for it to "
                            "finish or choose another --out")
    held = Claim(path, fd)
    _claims[out] = held
    try:
        _clean_leftovers(out)
        _sweep_other_leftovers(out)
        if out.exists() and not force:  # an interrupted --force's old folder was put back
            raise BadInputError(f"{out} already exists; choose another --out or pass --force")
        free = shutil.disk_usage(parent).free
        if free < MIN_FREE_BYTES:
            raise BadInputError(f"only {free / 2**20:.0f} MB free in {parent}; a result needs "
                                f"up to {MIN_FREE_BYTES / 2**20:.0f} MB")
    except BaseException:
        release(out)
        raise
    return held


def release(out: Path) -> None:
    """Drop this process's claim on `out` (no-op without one)."""
    held = _claims.pop(Path(os.path.abspath(out)), None)
    if held is not None:
        _unlock(held.lock_path, held.fd)


def release_all() -> None:
    """Drop every claim this process holds (the CLI calls it on the way out)."""
    for out in list(_claims):
        release(out)


def _leftovers(out: Path, kind: str) -> list[Path]:
    prefix = f".{out.name}.{kind}-"
    return sorted((p for p in out.parent.iterdir() if p.name.startswith(prefix)),
                  key=lambda p: p.stat().st_mtime)


def _clean_leftovers(out: Path) -> None:
    """With `out` claimed: finish what dead runs left. An `.old-*` folder without `out`
    means a --force stopped between its two renames: the old result is put back."""
    olds = _leftovers(out, "old")
    if olds and not out.exists():
        os.rename(olds.pop(), out)
    for path in olds + _leftovers(out, "partial"):
        _remove(path)


def _sweep_other_leftovers(out: Path) -> None:
    """Clean leftovers of other destinations in the same folder whose lock is free."""
    names = {m["name"] for p in out.parent.iterdir()
             if (m := _LEFTOVER.match(p.name)) and (m["kind"] != "lock" or _is_ours(p))}
    for name in sorted(names - {out.name}):
        other = out.parent / name
        try:
            fd = _try_lock(lock_path(other))
        except OSError:
            continue
        if fd is None:
            continue
        try:
            _clean_leftovers(other)
        finally:
            _unlock(lock_path(other), fd)


def _is_ours(lock: Path) -> bool:
    """Whether a `.NAME.lock` file is an engine's (a user's own file is never removed)."""
    try:
        with open(lock, "rb") as file:
            return file.read(len(LOCK_MARK)) == LOCK_MARK
    except OSError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


# ----------------------------------------------------------------------------- publishing


def staging_folder(out: Path) -> Path:
    """A new empty hidden folder beside `out` to write the result into."""
    out = Path(os.path.abspath(out))
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux renameat2; False where the call or the flag is not available (then the caller
    falls back). FileExistsError when NOREPLACE finds `dst`."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    call = getattr(libc, "renameat2", None)
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # old kernel or file system
        return False
    raise OSError(err, os.strerror(err), str(dst))


def rename_noreplace(src: Path, dst: Path, native: bool = True) -> None:
    """Rename folder `src` to `dst`; DestinationTaken if `dst` exists, never replacing it.

    native=False takes the portable path (tests use it where renameat2 exists)."""
    try:
        if native and _renameat2(src, dst, _RENAME_NOREPLACE):
            return
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise DestinationTaken(errno.EEXIST, "destination exists", str(dst)) from error
        raise
    if sys.platform == "win32":  # Windows' rename never replaces
        try:
            os.rename(src, dst)
        except FileExistsError as error:
            raise DestinationTaken(errno.EEXIST, "destination exists", str(dst)) from error
        return
    try:
        os.mkdir(dst)  # POSIX rename replaces an empty folder: reserve dst first
    except FileExistsError as error:
        raise DestinationTaken(errno.EEXIST, "destination exists", str(dst)) from error
    try:
        os.replace(src, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(dst)
        raise


def replace_folder(src: Path, dst: Path, native: bool = True) -> None:
    """Put folder `src` in place of the existing folder `dst`; `dst` (old or new) is
    visible at every moment, and the old one is removed afterwards."""
    old = dst.parent / f".{dst.name}.old-{os.getpid()}"
    if native and _renameat2(src, dst, _RENAME_EXCHANGE):
        _remove(src)  # src now holds the old folder
        return
    os.rename(dst, old)  # journal: a later claim puts `old` back if `dst` never arrives
    try:
        os.rename(src, dst)
    except BaseException:
        if not dst.exists():
            os.rename(old, dst)
        raise
    _remove(old)


def publish(staging: Path, out: Path, force: bool) -> Path:
    """Move the finished `staging` folder to `out`, claimed by this process, and release
    the claim. Without `force` an `out` that appeared meanwhile is left untouched: the
    result is kept under a free visible name and BadInputError (exit 2) says where."""
    out = Path(os.path.abspath(out))
    claim(out, force)
    try:
        while True:
            try:
                if force and out.exists():
                    replace_folder(staging, out)
                else:
                    rename_noreplace(staging, out)
                return out
            except DestinationTaken:
                if force:
                    continue  # it appeared just now; --force replaces it
                kept = _keep_visible(staging, out)
                raise BadInputError(
                    f"{out} appeared while this run was working (another program made it); "
                    f"it was left untouched and this run's result is in {kept}") from None
    finally:
        release(out)


def _keep_visible(staging: Path, out: Path) -> Path:
    """Rename `staging` to the first free `NAME-2`, `NAME-3`, ... beside `out`."""
    for n in range(2, 1000):
        candidate = out.with_name(f"{out.name}-{n}")
        try:
            rename_noreplace(staging, candidate)
            return candidate
        except DestinationTaken:
            continue
    raise BadInputError(f"{out} appeared while this run was working; no free name to keep "
                        "this run's result")
