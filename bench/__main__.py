"""`python -m bench [name ...]`: runs the benchmarks one after another and prints their figures.

Each benchmark is its own process (its own servers, models and memory), so one cannot skew the
next. Names: nlu, engine, browser, phone, scale; all by default.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHES: dict[str, list[str]] = {
    "nlu": ["bench.nlu_bench"],
    "engine": ["bench.engine_bench"],
    "browser": ["tests.browser.bench_browser", "--turns", "10", "--barge", "3"],
    "phone": ["tests.twilio.bench_phone", "--callers", "8", "--seconds", "120"],
    "scale": ["bench.scale_bench"],
}


def main(argv: list[str]) -> int:
    """Runs the named benchmarks (all when none is named); non-zero if any failed."""
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(BENCHES)}")
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench {name}: python -m {' '.join(BENCHES[name])}", flush=True)
        start = time.monotonic()
        code = subprocess.call([sys.executable, "-m", *BENCHES[name]])
        print(f"=== bench {name}: exit {code} after {time.monotonic() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
