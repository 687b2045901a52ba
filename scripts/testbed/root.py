"""The bed's root directory and state file: made empty, marked as ours, unmounted and deleted."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .common import TestBedError, log

MARKER_FILE = ".berth-testbed"  # only directories holding it are ever deleted by stop()
# unix socket paths must stay under 108 bytes; the longest one is containerd's under R/eN/exec.
MAX_ROOT_LENGTH = 60


def make_root(root: Path | None) -> Path:
    """Create (or check that it is empty) and mark the root; a fresh /tmp/berth-XXXXXXXX if None."""
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="berth-", dir="/tmp"))
    elif root.exists() and any(root.iterdir()):
        raise TestBedError(f"root {root} is not empty (stop() deletes it, so it must be "
                           f"empty or absent)")
    root.mkdir(parents=True, exist_ok=True)
    if len(str(root)) > MAX_ROOT_LENGTH:
        raise TestBedError(f"root {root} is too long: unix socket paths under it would "
                           f"exceed 108 bytes; use at most {MAX_ROOT_LENGTH} characters")
    # mkdtemp makes it 0700; the postgres user must be able to reach R/pg.
    root.chmod(0o755)
    (root / MARKER_FILE).write_text("created by scripts/testbed\n")
    return root


def unmount_all(root: Path) -> None:
    """Unmount what dockerd left mounted under the root (overlays, netns), deepest first."""
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo") as f:
        # Field 5 is the mount point, with spaces and the like escaped as octal (\040).
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


def remove_root(root: Path, keep: bool) -> None:
    if keep:
        log.info("kept %s", root)
        return
    if not (root / MARKER_FILE).exists():
        if root.exists():
            log.warning("not deleting %s: it has no %s marker", root, MARKER_FILE)
        return
    shutil.rmtree(root, onerror=lambda _f, path, exc: log.warning(
        "could not delete %s: %s", path, exc[1]))


def remove_state_file(state_path: Path | None, root: Path) -> None:
    """Remove the state file, if it still describes the bed at `root`."""
    if state_path is None or not state_path.exists():
        return
    try:
        if json.loads(state_path.read_text()).get("root") == str(root):
            state_path.unlink()
    except (OSError, ValueError):
        pass


def running_bed_root(state_path: str) -> str | None:
    """The root of the test bed a state file describes, if that one still exists."""
    try:
        root = json.loads(Path(state_path).read_text()).get("root")
    except (OSError, ValueError):
        return None
    return root if root and Path(root, MARKER_FILE).exists() else None
