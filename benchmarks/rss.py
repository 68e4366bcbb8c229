"""The client's own resident memory over a policyhistory command: a thread samples VmRSS every 20 ms.

python benchmarks/rss.py [policyhistory's arguments...]
prints, on stderr after the command's own output, the peak and when it fell, and the last 3 seconds' peak.
/usr/bin/time's %M is the high-water mark of the process and of the children it waited for, which varies
from run to run where a phase's memory can reuse what an earlier phase freed; this says where the peak is.
Linux only (reads /proc/self/status).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time


def _sample(samples: list[tuple[float, int]]) -> None:
    while True:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    samples.append((time.monotonic(), int(line.split()[1]) // 1024))
        time.sleep(0.02)


def main() -> None:
    from policyhistory.cli import cli

    samples: list[tuple[float, int]] = []
    threading.Thread(target=_sample, args=(samples,), daemon=True).start()
    began = time.monotonic()
    with contextlib.suppress(SystemExit):  # the command's exit status is its own output's business here
        cli(sys.argv[1:])
    ended = time.monotonic()
    at, peak = max(samples, key=lambda sample: sample[1])
    last = max(rss for when, rss in samples if when > ended - 3)
    print(f"client peak {peak} MB at {at - began:.1f} s of {ended - began:.1f} s; the last 3 s' peak {last} MB",
          file=sys.stderr)


if __name__ == "__main__":  # workers spawned by --workers N import this module again
    main()
