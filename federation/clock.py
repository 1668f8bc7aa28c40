"""Wall-clock time as Matrix counts it (milliseconds since the epoch). Bottom layer, no imports."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)
