"""CPU and memory units: exact integer millicpus for arithmetic, human text for explanations."""
from __future__ import annotations

MILLI = 1000
_BYTE_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def to_millicpus(cpus: float) -> int:
    """Whole millicpus, so that sums and comparisons of allocations are exact."""
    return round(cpus * MILLI)


def format_cpus(millicpus: int) -> str:
    """2000 -> "2.0", 1250 -> "1.25", 500 -> "0.5"."""
    text = f"{millicpus / MILLI:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_bytes(size: int) -> str:
    """536870912 -> "512 MiB", 1610612736 -> "1.5 GiB"."""
    for unit, scale in _BYTE_UNITS:
        if size >= scale:
            text = f"{size / scale:.2f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    return f"{size} B"
