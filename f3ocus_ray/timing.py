"""Start-up timestamps for bench/startup.py.

With F3OCUS_TIMING=<file> set, `mark` appends one JSON line (wall time, pid, event, fields) to
the file; Ray's workers inherit the variable from the process that started Ray, so every
process of a run writes to the same file. Unset, a mark costs one environment lookup.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV = "F3OCUS_TIMING"


def mark(event: str, **fields: Any) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"t": time.time(), "pid": os.getpid(), "event": event, **fields})
    with open(path, "a") as f:  # one short append per line: lines of processes do not mix
        f.write(line + "\n")
