"""A dependency-free progress bar for the long steps of the demo (stderr; a single final line
when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, width: int = 30):
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.done = 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self._draw()

    def _draw(self, final: bool = False) -> None:
        if not self.tty and not final:
            return
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        end = "\n" if final else ""
        sys.stderr.write(f"\r{self.label:<38} [{bar}] {self.done}/{self.total} {elapsed:6.1f}s{end}")
        sys.stderr.flush()

    def update(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        self._draw()

    def close(self) -> None:
        self.done = self.total
        self._draw(final=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
