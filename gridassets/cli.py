"""`python -m gridassets <command>`: the commands behind `make run`, `make evaluate`, `make bench`."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from gridassets import runner, warehouse
from gridassets.settings import Settings, SettingsError

RAW = "transformer_telemetry,feeder_load,weather_observations,outage_events,transformer_failures"
# Raw history is built in chunks so that memory stays bounded whatever the window.
RAW_CHUNK_DAYS = 31


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Build the warehouse over the window and print what was produced and where."""
    from gridassets.definitions import defs

    settings = Settings.from_env()
    instance = runner.instance()
    print(f"gridassets: {settings.source} data, {args.start} .. {args.end}")
    print(f"  warehouse   {settings.warehouse}")
    print(f"  dagster     {instance.root_directory if hasattr(instance, 'root_directory') else 'ephemeral'}")
    started = time.monotonic()

    def step(label: str, select: str, **kw) -> None:
        t0 = time.monotonic()
        runner.materialize(defs, select, dagster_instance=instance, **kw)
        print(f"  {label:<44} {time.monotonic() - t0:6.1f} s")

    step("fleet registry", "circuits,transformers")
    for first, last in runner.chunks(args.start, args.end, RAW_CHUNK_DAYS):
        step(f"raw data {first}..{last}", RAW, start=first.isoformat(), end=last.isoformat())

    print(f"done in {time.monotonic() - started:.0f} s\n")
    with warehouse.connect(settings.warehouse) as con:
        for table in ("circuits", "transformers", *RAW.split(",")):
            n = con.execute(f"select count(*) from {warehouse.qualified(table)}").fetchall()[0][0]
            print(f"  {warehouse.qualified(table):<34} {n:>12,} rows")
    return 0


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gridassets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="build the warehouse over a window and print the list")
    p_run.add_argument("--start", type=_day, required=True)
    p_run.add_argument("--end", type=_day, required=True)
    p_run.set_defaults(func=run)
    p_exp = sub.add_parser("export-landing", help="write synthetic days as landing files")
    p_exp.add_argument("--start", type=_day, required=True)
    p_exp.add_argument("--end", type=_day, required=True)
    p_exp.add_argument("--out", type=Path, required=True, help="landing folder to write")
    p_exp.add_argument("--circuits", type=int, default=None)
    p_exp.add_argument("--transformers", type=int, default=None)
    p_exp.set_defaults(func=export_landing)
    args = parser.parse_args(argv)
    if getattr(args, "start", None) and args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"gridassets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
