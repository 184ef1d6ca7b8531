"""Byte-identical runs need Python's string hashing pinned.

SDV's HMA sampler walks the root tables of a set in the iteration order of a Python `set` of
table names, which follows the per-process string hash seed; the order decides which parent
drives a child's row counts and how the shared NumPy stream is consumed. So the same model and
seed give different rows in two processes unless `PYTHONHASHSEED` is the same. Every runner pins
it: the CLI (and so DVC) re-executes itself once with it set, and the Airflow configurations set
it for their workers.
"""

from __future__ import annotations

import logging
import os
import sys

HASH_SEED = "0"
"""The value every runner pins `PYTHONHASHSEED` to."""

log = logging.getLogger(__name__)


def hash_seed_pinned() -> bool:
    """Whether this process hashes strings with the pinned seed."""
    return os.environ.get("PYTHONHASHSEED") == HASH_SEED


def reexec_with_pinned_hash_seed() -> None:
    """Replace this process by the same command with `PYTHONHASHSEED` pinned (no-op when it is).

    Called first thing by the command-line entry points, before any heavy import.
    """
    if hash_seed_pinned():
        return
    os.environ["PYTHONHASHSEED"] = HASH_SEED
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def warn_unless_pinned(what: str) -> bool:
    """Log a warning when `what` is only reproducible with a pinned hash seed; return whether it is."""
    if hash_seed_pinned():
        return True
    log.warning(
        "%s depends on Python's string hash seed: set PYTHONHASHSEED=%s for byte-identical reruns "
        "(the synthgate command does this itself)",
        what,
        HASH_SEED,
    )
    return False
