"""A small progress bar for long writes: bytes done, GB/s, time left. Thread-safe (the writer
thread reports), redrawn at most ten times a second, and only on a terminal; a summary line is
always printed at the end."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    def __init__(self, total: int, label: str, *, stream=None, enabled: bool | None = None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._lock = threading.Lock()

    def __call__(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            now = time.perf_counter()
            if self.enabled and (now - self._last_draw > 0.1 or self.done >= self.total):
                self._last_draw = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        fraction = min(self.done / self.total, 1.0)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(30 * fraction)
        self.stream.write(
            f"\r{self.label} [{bar:<30s}] {100 * fraction:5.1f}% {self.done / 1e9:.2f}/{self.total / 1e9:.2f} GB "
            f"{rate / 1e9:.2f} GB/s, {left:.0f} s left "
        )
        self.stream.flush()

    def close(self) -> str:
        elapsed = time.perf_counter() - self.started
        summary = (f"{self.label}: {self.done / 1e9:.2f} GB in {elapsed:.1f} s "
                   f"({self.done / max(elapsed, 1e-9) / 1e9:.2f} GB/s)")  # fmt: skip
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(summary + "\n")
        self.stream.flush()
        return summary
