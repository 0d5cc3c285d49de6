"""Ports for the servers the tests start: a random free one under the kernel's ephemeral range.

A port from bind(0) is an ephemeral one: released, then bound again by the server a moment later,
it can be taken in between by any outgoing connection of the machine, and scripts/test.sh runs the
runtime scripts beside pytest, both busy with clients. Ports under the range (Linux's starts at
32768) are only ever taken by a listener. The Python tests draw from 26000-31999, the JS tests
(tests/js/lib/services.mjs) from 20000-25999, so the two sides never draw the same port.
Python processes running at once keep apart by ranges of their own: scripts/test.sh gives pytest's
lane and the runtime scripts' lane (whose scripts run pytest and Python drivers too) halves of it
in SKEDGE_TEST_PORTS ("low-high"); `_given` only keeps one process's draws apart.
"""

from __future__ import annotations

import os
import random
import socket

_given: set[int] = set()


def free_port() -> int:
    low, high = map(int, os.environ.get("SKEDGE_TEST_PORTS", "26000-31999").split("-"))
    for _ in range(200):
        port = random.randint(low, high)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high}")
