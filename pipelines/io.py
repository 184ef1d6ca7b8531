"""Atomic, deterministic file I/O and digests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def verify_sha256(path: Path, expected: str, shown: str, record: str, fix: str) -> None:
    """IntegrityError (exit 4) when a file no longer has the sha256 that a run record holds.

    The one digest check of the pipeline: every stage that trusts an upstream file calls it.
    """
    from pipelines.errors import IntegrityError, InvalidInputError

    if not Path(path).is_file():
        raise InvalidInputError(shown, [f"file not found; the {record} record lists it"], hint=fix.capitalize())
    actual = sha256_file(path)
    if actual != expected:
        raise IntegrityError(
            f"{shown}: sha256 {actual[:12]}… does not match the {record} record ({expected[:12]}…); {fix}"
        )


def umask() -> int:
    """The process's umask: from /proc where the system has it (no other thread sees it change),
    else set and put back at once."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets under the umask (0666 & ~umask: 0644 for the usual 022)."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """The mode a new folder gets under the umask (0777 & ~umask: 0755 for the usual 022)."""
    return 0o777 & ~umask()


def apply_umask(folder: Path) -> None:
    """Give `folder` and everything under it the modes the umask implies (a `tempfile.mkdtemp`
    folder is 0700 and a `mkstemp` file 0600, whatever the umask)."""
    files, dirs = file_mode(), dir_mode()
    os.chmod(folder, dirs)
    for path in Path(folder).rglob("*"):
        if not path.is_symlink():
            os.chmod(path, dirs if path.is_dir() else files)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it over `target` only on success.

    A crash or exception leaves the old `target` intact and removes the temp file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(target: Path, data: bytes) -> None:
    """Atomically write bytes."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def dumps_json(obj: Any) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys, e.g. {"gates": {"quality_min": 0.75}} -> {"gates.quality_min": 0.75}.

    An empty dict stays one value (so a key set to `{}` is not lost).
    """
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def write_json(target: Path, obj: Any) -> None:
    """Atomically write stable JSON."""
    write_bytes(target, dumps_json(obj).encode("utf-8"))


def read_json(path: Path) -> Any:
    """Read JSON, naming the file on failure."""
    from pipelines.errors import InvalidInputError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(str(path), ["file not found (run the upstream stage first)"]) from None
    except json.JSONDecodeError as err:
        raise InvalidInputError(str(path), [f"not valid JSON: {err}"]) from None


def write_parquet(target: Path, df: pd.DataFrame) -> str:
    """Atomically write a DataFrame as parquet with fixed settings; return its sha256.

    The same frame always gives the same bytes (no index, fixed compression, no timestamps).
    """
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="snappy")
    return sha256_file(target)


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a parquet file written by an upstream stage, naming it when it is missing."""
    import pandas as pd

    from pipelines.errors import InvalidInputError

    if not Path(path).is_file():
        raise InvalidInputError(str(path), ["file not found (run the upstream stage first)"])
    return pd.read_parquet(path, engine="pyarrow")
