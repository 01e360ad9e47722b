"""Reads `rasa test nlu`'s intent report, prints the figures and fails below a minimum accuracy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def summarize(report: dict[str, dict[str, float] | float]) -> tuple[float, float, list[str]]:
    """Returns (accuracy, weighted F1, lines describing each intent's F1)."""
    accuracy = float(report["accuracy"])  # type: ignore[arg-type]
    weighted = report["weighted avg"]
    assert isinstance(weighted, dict)
    lines = []
    for name, row in sorted(report.items()):
        if (
            isinstance(row, dict)
            and "f1-score" in row
            and name not in {"macro avg", "weighted avg", "micro avg"}
        ):
            lines.append(f"  {name:<22} f1={row['f1-score']:.3f}  support={int(row['support'])}")
    return accuracy, float(weighted["f1-score"]), lines


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("--min-accuracy", type=float, default=0.9)
    args = parser.parse_args(argv)
    accuracy, f1, lines = summarize(json.loads(args.report.read_text()))
    print("\n".join(lines))
    print(f"holdout intent accuracy {accuracy:.3f}, weighted F1 {f1:.3f}")
    if accuracy < args.min_accuracy:
        print(f"error: holdout accuracy {accuracy:.3f} < {args.min_accuracy:.2f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
