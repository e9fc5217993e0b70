"""Loaded by a gateway that ``bench/inflight.py --breakdown`` starts (this directory on its
``PYTHONPATH``): traces allocations, and on each ``SIGUSR1`` writes every source file's traced
bytes as JSON to ``$TRACEMALLOC_OUT``, for the benchmark to subtract one snapshot from another."""

import json
import os
import signal
import tracemalloc

tracemalloc.start()


def _dump(signum: int, frame: object) -> None:
    sizes: dict[str, int] = {}
    for stat in tracemalloc.take_snapshot().statistics("filename"):
        sizes[stat.traceback[0].filename] = stat.size
    path = os.environ["TRACEMALLOC_OUT"]
    with open(path + ".tmp", "w") as out:
        json.dump(sizes, out)
    os.replace(path + ".tmp", path)


signal.signal(signal.SIGUSR1, _dump)
