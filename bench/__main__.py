"""`python -m bench` (`make bench`): run every measurement, print the table, write
`bench/results/latest.json` and `latest.md`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.config import RESULTS_DIR, BenchConfig
from bench.measures import BenchResults
from bench.report import table_rows, text_table, write_reports
from bench.runner import run
from bench.servers import ServerUnavailable
from bench.signals import terminate_as_interrupt


def parse_args(argv: list[str]) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--pg", default=defaults.pg_admin_url, help="PostgreSQL admin URL")
    parser.add_argument("--redis", default=defaults.redis_url, help="Redis URL")
    parser.add_argument("--naive-rows", type=int, default=defaults.naive_rows)
    parser.add_argument("--batch-rows", type=int, default=defaults.batch_rows)
    parser.add_argument("--big-rows", type=int, default=defaults.big_rows)
    parser.add_argument("--repeat", type=int, default=defaults.repeat)
    parser.add_argument("--latency-batches", type=int, default=defaults.latency_batches)
    parser.add_argument("--logs", type=Path, help="keep the API's and the worker's logs here")
    args = parser.parse_args(argv)
    return BenchConfig(
        pg_admin_url=args.pg,
        redis_url=args.redis,
        naive_rows=args.naive_rows,
        batch_rows=args.batch_rows,
        big_rows=args.big_rows,
        repeat=max(1, args.repeat),
        latency_batches=args.latency_batches,
        logs_dir=args.logs,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    results = BenchResults()

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        with terminate_as_interrupt():
            run(config, results, say)
    except ServerUnavailable as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        rows = table_rows(results)
        if rows:
            print("\nmeasured before the failure (not written to bench/results):")
            print(text_table(rows))
        print(f"bench: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    rows = table_rows(results)
    print()
    print(text_table(rows))
    json_path, md_path = write_reports(results, rows, RESULTS_DIR)
    missed = [row.measure for row in rows if row.passed is False]
    print(f"\nwrote {json_path} and {md_path}")
    print(f"{len(missed)} target(s) missed" + (f": {'; '.join(missed)}" if missed else ""))
    if results.errors:
        print(f"bench: {len(results.errors)} measurement(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
