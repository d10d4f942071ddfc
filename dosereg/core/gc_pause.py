"""The cyclic garbage collector held back around work that builds many short-lived, acyclic objects.

Parsing a 316-event report builds ~15 000 content items and recording it ~1 000 rows and JSON values: none of them
form reference cycles, so reference counting frees them all.  With the collector running, every few hundred of those
allocations start a collection, and the generations it walks hold the batch's parsed reports: a fifth of the CPU time
of ingesting such a report went to collections that found nothing to free.

Two strengths, one home: :func:`collector_paused` for a bounded block (one batch), :func:`collector_relaxed` for a
long run (a command recording millions of rows) where cycles must still be freed now and then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off for the block, back on after it if it was on (nesting keeps the outer block's state)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def collector_relaxed(threshold: int = 70_000) -> Iterator[None]:
    """For a long run: what is already loaded (Django, the apps) is frozen out of the scans and young collections
    run about a hundred times less often than at the default threshold (700); cycles are still freed.  The
    collector's settings are restored afterwards."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
