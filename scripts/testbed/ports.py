"""Ports on 127.0.0.1: free ones for the bed's listeners, disjoint claimed blocks for the
engines' services, and whether something answers on one."""
from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path
from typing import Iterable

from .common import LOCALHOST, TestBedError

PORT_CLAIMS_DIR = Path("/tmp/berth-testbed-ports")
PORT_RANGE_START = 20000

_ports_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, from the kernel's ephemeral range."""
    while True:
        with socket.socket() as sock:
            sock.bind((LOCALHOST, 0))
            port = sock.getsockname()[1]
        if port not in _ports_handed_out:  # the kernel may hand the same one out twice
            _ports_handed_out.add(port)
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # Servers set SO_REUSEADDR, so a port only held by TIME_WAIT connections counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
            return True
        except OSError:
            return False


def ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def claim_port_ranges(count: int, size: int, owner: str) -> list[tuple[int, int]]:
    """Claim `count` blocks of `size` free ports for the engines' services.

    Blocks come from outside the kernel's ephemeral range, so free_port() never lands in one.
    A claim is a file PORT_CLAIMS_DIR/<first port> naming its test bed's root; it is stale once
    that root is gone.
    """
    low, high = ephemeral_port_range()
    candidates = [*range(PORT_RANGE_START, low - size + 1, size),
                  *range((high // size + 1) * size, 65536 - size + 1, size)]
    PORT_CLAIMS_DIR.mkdir(mode=0o755, exist_ok=True)
    claimed: list[tuple[int, int]] = []
    for first in candidates:
        if len(claimed) == count:
            break
        if not _claim_file(first, owner):
            continue
        if all(port_is_free(port) for port in range(first, first + size)):
            claimed.append((first, first + size - 1))
        else:
            release_port_ranges([(first, first + size - 1)], owner)
    if len(claimed) < count:
        release_port_ranges(claimed, owner)
        raise TestBedError(f"could not find {count} free blocks of {size} ports "
                           f"(claims are in {PORT_CLAIMS_DIR})")
    return claimed


def _claim_file(first: int, owner: str) -> bool:
    path = PORT_CLAIMS_DIR / str(first)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = path.read_text().strip()
            except OSError:
                holder = ""
            if holder and os.path.isdir(holder):
                return False
            path.unlink(missing_ok=True)  # stale: its test bed is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner + "\n")
        return True
    return False


def release_port_ranges(ranges: Iterable[Iterable[int]], owner: str) -> None:
    for first, _ in ranges:
        path = PORT_CLAIMS_DIR / str(first)
        try:
            if path.read_text().strip() == owner:
                path.unlink()
        except OSError:
            pass


def http_status(port: int, path: str, timeout: float = 2.0) -> int:
    # http.client rather than urllib: urllib would honour *_proxy variables.
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1.0):
            return True
    except OSError:
        return False
