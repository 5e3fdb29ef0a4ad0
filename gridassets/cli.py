"""`python -m gridassets <command>`: the commands behind `make run`, `make evaluate`, `make bench`,
and `backup` of the warehouse."""

from __future__ import annotations

import argparse
import sys
import time
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path

from gridassets import runner, warehouse, window
from gridassets.scaleout import cli as scaleout_cli
from gridassets.settings import Settings, SettingsError
from gridassets.storage import backend
from gridassets.storage import copy as warehouse_copy
from gridassets.storage import scores as score_reads

# Days of daily lists (and of the weekly models behind them) that `run` scores at the window's end.
SCORE_DAYS = 56


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Build the warehouse over the window and print the top of the last day's list."""
    settings = Settings.from_env()
    today = datetime.now(timezone.utc).date()
    try:
        start, end, score_start = window.run_window(args.start, args.end, args.score_days,
                                                    settings.start_date, today)
    except window.WindowError as exc:
        print(f"gridassets run: {exc}", file=sys.stderr)
        return 2
    from gridassets.definitions import defs

    instance = runner.instance()
    home = getattr(instance, "root_directory", None) or "(temporary instance)"
    default = (f" (the {window.DEMO_MONTHS} months up to yesterday, UTC; START=/END= or "
               "--start/--end for another window)" if not (args.start or args.end) else "")
    print(f"gridassets: {settings.source} data, history {start}..{end}, "
          f"daily lists {score_start}..{end}{default}")
    print(f"  warehouse {settings.warehouse_location} ({settings.backend})\n  dagster   {home}\n")
    started = time.monotonic()
    runner.build_daily_graph(
        defs, start, end, score_start, instance,
        on_step=lambda label, seconds: print(f"  {label:<48} {seconds:6.1f} s", flush=True))
    print(f"\nbuilt in {time.monotonic() - started:.0f} s\n")
    print_list(settings, end, args.top)
    return 0


def print_list(settings: Settings, day: date, top: int) -> None:
    """The top of the day's prioritized list, then where every output is."""
    with backend.open_warehouse(settings).connect() as con:
        rows = score_reads.top_of_list(con, day, top)
        counts = score_reads.table_counts(con)
    print(f"Prioritized circuits for {day} (expected customer-minutes at risk over the next 7 days)")
    print(f"{'rank':>4}  {'circuit':<8} {'score':>9} {'outage':>9} {'transf.':>8} {'veget.':>8} "
          f"{'loading':>8} {'cust.':>6}  reason")
    for r in rows:
        print(f"{r[0]:>4}  {r[1]:<8} {r[2]:>9,.0f} {r[3]:>9,.0f} {r[4]:>8,.0f} {r[5]:>8,.0f} "
              f"{r[6]:>8,.0f} {r[7]:>6,}  {textwrap.shorten(r[8], 110)}")
    if rows:
        print(f"models: outage {rows[0][9]}, maintenance {rows[0][10]}")
    print("\nOutputs")
    print(f"  warehouse      {settings.warehouse_location} ({settings.backend})")
    for table, n in counts.items():
        print(f"    {warehouse.qualified(table):<40} {n:>12,} rows")
    print(f"  daily lists    {settings.outputs_dir / 'prioritized_circuits'}/<date>.csv")
    print(f"  work orders    {settings.outputs_dir / 'work_orders'}/<date>.csv")
    print(f"  models         {settings.models_dir}/<model>/<version>.joblib")
    print("  UI             make dev, then http://127.0.0.1:3000")


def export_landing(args: argparse.Namespace) -> int:
    """Write synthetic days as landing files: a worked example of the landing format."""
    from gridassets.domain.export import write_daily, write_registry
    from gridassets.domain.fleet import FleetConfig, FleetSimulator
    from gridassets.domain.schemas import CIRCUITS, RAW_TABLES, TRANSFORMERS

    s = Settings.from_env(n_circuits=args.circuits, n_transformers=args.transformers)
    sim = FleetSimulator(FleetConfig(seed=s.seed, n_circuits=s.n_circuits,
                                     n_transformers=s.n_transformers))
    write_registry(CIRCUITS, sim.circuits(), args.out)
    write_registry(TRANSFORMERS, sim.transformers(), args.out)
    for first, _ in runner.chunks(args.start, args.end, 1):
        for spec in RAW_TABLES:
            write_daily(spec, getattr(sim, spec.name)(first), args.out, first)
    print(f"wrote {s.n_circuits} circuits, {s.n_transformers} transformers and "
          f"{(args.end - args.start).days + 1} day(s) of raw files to {args.out}")
    return 0


def bench(args: argparse.Namespace) -> int:
    """Speed and memory of one daily partition, and how its cost grows (gridassets/bench.py)."""
    from gridassets import bench as benchmark

    try:
        backends = benchmark.BACKENDS if args.backend == "both" else (args.backend,)
        result = benchmark.run_backends(benchmark.config_from_args(args), backends)
        if args.docs is not None:
            sections = benchmark.write_docs(result, args.docs)
            print(f"written to {args.docs}, section(s) {', '.join(sections)}")
    except benchmark.BenchError as exc:
        print(f"gridassets bench: {exc}", file=sys.stderr)
        return 1
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Model quality on held-out time, the integration lift, and EIA-930 load forecasts."""
    from gridassets.evaluation import report

    report.evaluate(args.start, args.end, eia=not args.skip_eia, eia_origins=args.eia_origins,
                    docs=args.docs, section=args.docs_section)
    return 0


def backup(args: argparse.Namespace) -> int:
    """A consistent copy of the warehouse, taken under its lock; refuses a corrupt file."""
    from gridassets.storage import health

    settings = Settings.from_env()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if settings.backend == "delta":
        dest = args.to or settings.data_dir / "backups" / f"lake-{stamp}"
        try:
            tables = backend.open_warehouse(settings).backup(dest)
        except (warehouse.WarehouseError, OSError) as exc:
            print(f"gridassets backup: not backed up: {exc}", file=sys.stderr)
            return 1
        print(f"backed up {settings.lake_dir} ({tables} tables) to {dest}")
        return 0
    name = f"warehouse-{stamp}.duckdb"
    dest = args.to or settings.data_dir / "backups" / name
    if dest.is_dir():
        dest = dest / name
    try:
        made = health.backup_warehouse(settings.warehouse, dest)
    except (warehouse.WarehouseError, health.BackupError) as exc:
        print(f"gridassets backup: not backed up: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {made.source} ({made.tables} tables) to {made.path}: "
          f"{made.size_bytes / 1e6:,.1f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gridassets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="build the warehouse over a window and print the list")
    p_run.add_argument("--start", type=_day, default=None,
                       help=f"first day of history (default: {window.DEMO_MONTHS} months before "
                            "--end)")
    p_run.add_argument("--end", type=_day, default=None,
                       help="last day, whose list is printed (default: yesterday, UTC)")
    p_run.add_argument("--score-days", type=int, default=SCORE_DAYS,
                       help="days of daily lists to build at the end of the window")
    p_run.add_argument("--top", type=int, default=10, help="rows of the list to print")
    p_run.set_defaults(func=run)
    p_exp = sub.add_parser("export-landing", help="write synthetic days as landing files")
    p_exp.add_argument("--start", type=_day, required=True)
    p_exp.add_argument("--end", type=_day, required=True)
    p_exp.add_argument("--out", type=Path, required=True, help="landing folder to write")
    p_exp.add_argument("--circuits", type=int, default=None)
    p_exp.add_argument("--transformers", type=int, default=None)
    p_exp.set_defaults(func=export_landing)
    p_eval = sub.add_parser("evaluate", help="model quality, integration lift, EIA-930 forecasts")
    p_eval.add_argument("--start", type=_day, required=True,
                        help="history start, used when the warehouse is empty")
    p_eval.add_argument("--end", type=_day, required=True)
    p_eval.add_argument("--skip-eia", action="store_true", help="leave out the EIA-930 part")
    p_eval.add_argument("--eia-origins", type=int, default=None,
                        help="use only the first N day-ahead origins of 2025 (default: all)")
    p_eval.add_argument("--docs", type=Path, default=None,
                        help="also write the figures into this page's section evaluate:<name> "
                             "(make evaluate: docs/results.md)")
    p_eval.add_argument("--docs-section", default="demo",
                        help="the section's name (default: demo; make evaluate-large: large)")
    p_eval.set_defaults(func=evaluate)
    p_bench = sub.add_parser("bench", help="speed and memory of one daily partition (bench.json)")
    from gridassets.bench import add_arguments as bench_arguments

    bench_arguments(p_bench)
    p_bench.set_defaults(func=bench)
    p_backup = sub.add_parser("backup",
                              help="copy the warehouse consistently (refuses a corrupt one)")
    p_backup.add_argument("--to", type=Path, default=None,
                          help="the backup file, or a folder for it (default: <data dir>/backups/"
                               "warehouse-<UTC time>.duckdb)")
    p_backup.set_defaults(func=backup)
    warehouse_copy.add_parser(sub)
    scaleout_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if getattr(args, "start", None) and getattr(args, "end", None) and args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"gridassets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
