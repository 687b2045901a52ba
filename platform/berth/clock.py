"""Time, in one place, so logic can take a clock and tests can pass their own."""
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored naive, always UTC
