"""Progress bars that also work where tqdm is missing (the GPU machines have only torch & co)."""
from __future__ import annotations

import sys
import time

try:
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # pragma: no cover - exercised on the GPU machines
    _tqdm = None


class _Plain:
    """A tqdm stand-in: prints one line at most every 10 s, and iterates what it wraps."""

    def __init__(self, iterable=None, total=None, initial=0, desc="", disable=False, **_):
        self.iterable, self.total, self.n, self.desc, self.disable = iterable, total, initial, desc, disable
        self.postfix, self._last = "", 0.0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, k=1):
        self.n += k
        if not self.disable and (time.time() - self._last > 10 or self.n == self.total):
            self._last = time.time()
            print(f"{self.desc}: {self.n}/{self.total} {self.postfix}", file=sys.stderr, flush=True)

    def set_postfix_str(self, s, refresh=True):
        self.postfix = s

    def write(self, s):
        print(s, file=sys.stderr, flush=True)

    def close(self):
        pass


def progress_bar(iterable=None, **kwargs):
    """tqdm(iterable, **kwargs) when tqdm is installed, else a plain line printer."""
    return (_tqdm or _Plain)(iterable, **kwargs)
