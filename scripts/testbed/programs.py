"""Finding the system programs the bed runs, with the Debian package to install if one is missing."""
from __future__ import annotations

import glob
import os
import shutil
import struct
from pathlib import Path

from .common import INSTALL_HINT, TestBedError

POSTGRES_PROGRAMS = ("initdb", "postgres", "pg_isready", "createdb")


def find_programs(*, engines: bool, registries: bool, redis: bool, postgres: bool,
                  image: bool) -> dict[str, str]:
    """{name: path} of what the wanted components need; TestBedError names what is missing."""
    programs: dict[str, str] = {}
    if engines:
        if os.geteuid() != 0:
            raise TestBedError("Docker engines need root (dockerd runs rootful here)")
        programs["dockerd"] = find_program("dockerd", "docker.io")
        find_program("containerd", "docker.io")
        find_program("runc", "docker.io")
    if registries:
        programs["registry"] = find_program("docker-registry", "docker-registry")
    if redis:
        programs["redis"] = find_program("redis-server", "redis-server")
    if postgres:
        bindir = postgres_bindir()
        for program in POSTGRES_PROGRAMS:
            if not (bindir / program).exists():
                raise TestBedError(f"{bindir / program} is missing (Debian package postgresql); "
                                   f"{INSTALL_HINT}")
            programs[program] = str(bindir / program)
    if image:
        busybox = find_program("busybox", "busybox-static")
        if needs_dynamic_loader(busybox):
            raise TestBedError(f"{busybox} is dynamically linked and can't run in a FROM scratch "
                               f"image; install the Debian package busybox-static ({INSTALL_HINT})")
        programs["busybox"] = os.path.realpath(busybox)
    return programs


def find_program(name: str, package: str) -> str:
    # Non-root PATHs usually lack the sbin directories, where dockerd lives.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise TestBedError(f"`{name}` not found (Debian package {package}); {INSTALL_HINT}")
    return found


def postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin, or $BERTH_PG_BINDIR."""
    if override := os.environ.get("BERTH_PG_BINDIR"):
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()])
    if not found:
        raise TestBedError(f"no PostgreSQL server in /usr/lib/postgresql/*/bin "
                           f"(Debian package postgresql); {INSTALL_HINT}")
    return Path(found[-1]).parent


def needs_dynamic_loader(path: str) -> bool:
    """True if the ELF file has a PT_INTERP header: it cannot run in a FROM scratch image."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF":
            return True
        is64, endian = header[4] == 2, "<" if header[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack_from(endian + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x36)
        else:
            phoff, = struct.unpack_from(endian + "I", header, 0x1C)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x2A)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    PT_INTERP = 3
    return any(struct.unpack_from(endian + "I", table, i * phentsize)[0] == PT_INTERP
               for i in range(phnum))
