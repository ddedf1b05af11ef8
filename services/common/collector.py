"""CPython's cyclic garbage collector held off while a batch job builds millions of objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector is as it was after it.

    Reading a long history or working out a backtest allocates millions of objects that stay alive
    (observations, columns); every so often the collector re-scanned all of them, and at a million
    observations that was half the reading time and any full collection during a backtest added
    seconds. What these blocks build refers to nothing that refers back to it (no cycles: checked by
    tests/unit/test_collector.py), so reference counting frees it as before; cycles anything else
    makes meanwhile wait for the next collection after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
