"""`python -m bench [name ...]`: runs the benchmark modules and prints their figures."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmark modules, e.g. ["engine", "nlu"]."""
    return sorted(p.stem.removesuffix("_bench") for p in Path(__file__).parent.glob("*_bench.py"))


def main(argv: list[str]) -> int:
    """Runs the named benchmarks (all when none is named) and prints a JSON summary."""
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    results: dict[str, object] = {}
    for name in names:
        print(f"\n=== bench: {name}", flush=True)
        start = time.monotonic()
        module = importlib.import_module(f"bench.{name}_bench")
        results[name] = module.main()
        print(f"=== {name} done in {time.monotonic() - start:.0f} s", flush=True)
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nall figures: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
