"""Run every benchmark: ``make bench`` (or ``python -m bench [name ...] [--rows N] ...``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bench import billing, eligibility, importer, intake, lists, load, national, simulation

BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "decide": lambda options: eligibility.bench_decide(count=options.cases // 50),
    "simulate": lambda options: simulation.bench_simulate(decisions=options.cases),
    "intake": lambda options: intake.bench_intake(intakes=options.intakes, clients=options.clients),
    "import": lambda options: importer.bench_import(rows=options.rows),
    "billing": lambda options: billing.bench_billing(rows=options.ledger_rows, forces=options.forces,
                                                     providers=options.providers),
    "lists": lambda options: lists.bench_lists(encounters=options.encounters),
    "load": lambda options: load.bench_load(minutes=options.minutes, clients=options.clients),
    "national": lambda options: national.bench_national(encounters=options.national),
}
LONG = ("load", "national")  # run only when named

# The sizes of ``--quick``: minutes in all on two cores, for a look rather than a figure to quote.
QUICK = {"minutes": 2, "rows": 20_000, "intakes": 400, "ledger_rows": 100_000, "forces": 10, "providers": 5,
         "encounters": 20_000, "cases": 100_000, "national": 100_000}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run (default: all but {', '.join(LONG)}): {', '.join(BENCHMARKS)}")
    # A million rows: about 20 minutes on two quiet cores (--rows 20000 for a quick look).
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the import file (import)")
    parser.add_argument("--intakes", type=int, default=2_000, help="intakes to post (intake)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (intake)")
    parser.add_argument("--ledger-rows", dest="ledger_rows", type=int, default=1_000_000,
                        help="ledger rows in the month closed (billing)")
    parser.add_argument("--forces", type=int, default=45, help="forces billed (billing)")
    parser.add_argument("--providers", type=int, default=10, help="providers paid by each force (billing)")
    parser.add_argument("--encounters", type=int, default=1_000_000,
                        help="encounters in the force whose lists are timed (lists)")
    parser.add_argument("--cases", type=int, default=1_000_000,
                        help="past decisions of one force simulated through the page's job (simulate), "
                             "and a tenth of them as its baseline; decide takes a fiftieth of them")
    parser.add_argument("--minutes", type=int, default=20, help="how long the mixed load lasts (load)")
    parser.add_argument("--national", type=int, default=5_000_000,
                        help="encounters shared among the forces (national)")
    parser.add_argument("--quick", action="store_true",
                        help="a short look: every size a fiftieth or so of the full run (sizes given still win)")
    options = parser.parse_args(argv)
    if options.quick:
        for name, size in QUICK.items():
            if getattr(options, name) == parser.get_default(name):
                setattr(options, name, size)
    unknown = [name for name in options.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    for name in options.names or [name for name in BENCHMARKS if name not in LONG]:
        BENCHMARKS[name](options)


if __name__ == "__main__":
    main()
