"""Run every benchmark: ``make bench`` (or ``python -m bench [name ...]``)."""

from __future__ import annotations

import sys

from bench import eligibility

BENCHMARKS = {"decide": eligibility.bench_decide, "simulate": eligibility.bench_simulate}


def main(names: list[str]) -> None:
    for name in names or list(BENCHMARKS):
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        BENCHMARKS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
