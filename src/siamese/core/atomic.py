"""Writes that are never half done: a temporary file in the target's own folder, fsync, rename.

A reader (or a resumed run) sees the previous complete file or the new complete file, never a
truncated one: os.replace within one filesystem is atomic. Lightning 2.6.6 saves checkpoints
through an fsspec transaction whose temporary file comes from tempfile.mkstemp() (in $TMPDIR,
usually /tmp); when that is another filesystem the final shutil.move is a copy into the target,
so a kill or a full disk mid-copy leaves a truncated checkpoint. AtomicCheckpointIO fixes that.
"""

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from siamese.core.errors import UserError


class AtomicWriteError(UserError, OSError):
    """A file could not be written; the previous version, if any, is left as it was."""


def _fsync_dir(folder: Path) -> None:
    # the rename itself is durable only once the folder's entry is on disk
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported here (some filesystems): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temporary(folder: Path, name: str) -> tuple[int, str]:
    """A new file `.NAME.XXXXXXXX.tmp` in `folder`, created with mode 0666 so that the process's
    umask applies as it does to open() (mkstemp would make it 0600)."""
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {folder / name}")


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Calls write(f) on a temporary binary file beside `path`, then renames it onto `path`.

    On any failure (full disk, a kill signal raised as an exception) the temporary file is
    removed, `path` keeps its previous content, and AtomicWriteError names the path and cause.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(folder, path.name)
    except OSError as err:
        raise AtomicWriteError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            cause = err.strerror or str(err)
            raise AtomicWriteError(
                f"cannot write {path}: {cause}; its previous version is left as it was"
            ) from err
        raise  # KeyboardInterrupt, SystemExit...: the file is still intact, the exit goes on
    _fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, data: Any, **dump_kwargs: Any) -> None:
    # serialised before the file is opened: an unserialisable value touches no file
    dump_kwargs = {"indent": 2, "default": float} | dump_kwargs
    atomic_write_text(path, json.dumps(data, **dump_kwargs) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save, atomically: straight into the temporary file (a checkpoint is not held twice in
    memory); a failure, a pickling error too, removes it and leaves the previous file."""
    atomic_write(path, lambda f: torch.save(obj, f))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, with the temporary file in the checkpoint's own folder.

    Pass it to the Trainer: `pl.Trainer(..., plugins=[AtomicCheckpointIO()])`. Local paths only
    (the run folders): a remote URL keeps Lightning's own writer.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__}.save_checkpoint takes no storage_options "
                f"(got {storage_options!r})"
            )
        atomic_torch_save(checkpoint, path)


def new_file(path: str | os.PathLike, *companions: Callable[[Path], Path]) -> Path:
    """`path`, or path-1, path-2, ... : the first name free (with its companion files, e.g. an
    export's JSON), so that an earlier result is never overwritten."""
    path = Path(path)
    n, candidate = 0, path
    while candidate.exists() or any(c(candidate).exists() for c in companions):
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files that writes killed mid-way (kill -9) left in `folder`
    (`.NAME.XXXX.tmp`); returns them. For a resumed run's folders, before it writes again."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
