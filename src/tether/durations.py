"""Duration parsing, in one place: `timedelta` or short strings such as "30s", "5m", "2h", "3d"."""

from __future__ import annotations

import re
from datetime import timedelta

from tether.errors import UsageError

Duration = timedelta | str | int | float
"""A duration: a `timedelta`, seconds as a number, or a string like "500ms", "30s", "1h30m"."""

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Duration, *, what: str = "duration") -> timedelta:
    """Turn a duration given by a user into a `timedelta`.

    Args:
        value: A `timedelta`, a number of seconds, or a string of number+unit parts
            ("500ms", "30s", "5m", "2h", "3d", "1w", "1h30m").
        what: What the value is for, named in the error message.

    Raises:
        UsageError: The value is negative or not a duration.

    Example:
        >>> parse_duration("1h30m")
        datetime.timedelta(seconds=5400)
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise UsageError(f"{what}: expected a duration like '30s', got {value!r}")
    elif isinstance(value, int | float):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        result = _parse_text(value.strip().lower(), what)
    else:
        raise UsageError(f"{what}: expected a duration like '30s', got {value!r}")
    if result < timedelta(0):
        raise UsageError(f"{what}: a duration cannot be negative, got {value!r}")
    return result


def _parse_text(text: str, what: str) -> timedelta:
    pos, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise UsageError(
            f"{what}: cannot read {text!r} as a duration; use a number and a unit "
            "(ms, s, m, h, d, w), e.g. '30s', '5m', '1h30m'"
        )
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta | float) -> str:
    """Format a duration for people: "850ms", "12.3s", "4m05s", "2h10m"."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
