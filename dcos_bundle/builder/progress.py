"""The build's progress as tqdm bars on stderr, one per download or image export, only when a person watches.

Not ``ingest.progress.StageProgress``: that one writes an ingest job's byte counts to the
database; this one only draws.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm


class _Bar:
    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._bar = None

    def start(self, name: str, total: int | None) -> None:
        if self._enabled:
            self._bar = tqdm(
                total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False
            )

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class BuildProgress:
    def __init__(self, enabled: bool | None = None):
        # None: show bars only when a person is watching.
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def bar(self) -> Iterator[_Bar]:
        """One bar: call ``start(name, total)`` once the total is known, then ``advance``."""
        bar = _Bar(self.enabled)
        try:
            yield bar
        finally:
            bar.close()
