"""What every part of the test bed shares: the logger, the address, the error, small file helpers."""
from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("testbed")

LOCALHOST = "127.0.0.1"
DEFAULT_TIMEOUT = 60.0
POLL_INTERVAL = 0.05
INSTALL_HINT = "run scripts/install-system-deps.sh as root to install it"


class TestBedError(RuntimeError):
    """A program is missing or a component did not come up; the message says which and why."""

    __test__ = False  # not a pytest test class, despite the name


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


def write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def deep_merge(base: dict, extra: dict) -> dict:
    """`base` updated recursively with `extra`; a None value in `extra` deletes that key."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
