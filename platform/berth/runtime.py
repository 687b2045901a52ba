"""Facts about the running process that operators and tests check, such as that the
standard library's `platform` module is the one imported (platform/ must not shadow it)."""
from __future__ import annotations

import platform
import sys
import sysconfig
from pathlib import Path


def platform_module_is_stdlib() -> bool:
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    return Path(platform.__file__).resolve().parent == stdlib


def describe() -> dict:
    return {
        "python": platform.python_version(),
        "platform_module": platform.__file__,
        "platform_is_stdlib": platform_module_is_stdlib(),
        "executable": sys.executable,
    }
