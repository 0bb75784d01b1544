"""Progress bars for long downloads and exports (tqdm, on stderr, only on a terminal)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from tqdm import tqdm


class _Task:
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


class Progress:
    def __init__(self, enabled: bool | None = None):
        # None: show bars only when a person is watching.
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def task(self):
        """One bar: call ``start(name, total)`` once the total is known, then ``advance``."""
        task = _Task(self.enabled)
        try:
            yield task
        finally:
            task.close()
