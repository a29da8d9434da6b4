"""Crash points for the tests that kill real processes: TIERGRAPH_CRASH_AT=<name> kills this process with SIGKILL
when it reaches `crash_point(<name>)`, exactly as `kill -9` would there. Unset (always, outside those tests),
crash_point does nothing."""
from __future__ import annotations

import os
import signal

ENV = "TIERGRAPH_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
