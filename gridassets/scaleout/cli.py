"""`python -m gridassets scaleout up|down|env|backfill|demo|bench`: a local scale-out cluster and the
commands that use it (the Makefile's scaleout-* targets)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gridassets.scaleout import cluster

STATE_DIR = cluster.REPO_ROOT / ".scaleout"


def up(args: argparse.Namespace) -> int:
    existing = cluster.Cluster.load(args.state_dir)
    if existing is not None and any(cluster.is_running(p) for p in existing.processes):
        print(f"a cluster is already running (state in {args.state_dir}); "
              "`make scaleout-down` stops it")
        return 1
    settings_env = {k: v for k, v in os.environ.items()
                    if k.startswith("GRIDASSETS_") and k not in (
                        "GRIDASSETS_MODE", "GRIDASSETS_WAREHOUSE", "GRIDASSETS_DATA_DIR",
                        "GRIDASSETS_CELERY_BROKER", "GRIDASSETS_CELERY_BACKEND",
                        "GRIDASSETS_POSTGRES_URL")}
    data_dir = Path(os.environ.get("GRIDASSETS_DATA_DIR", "data")).resolve()
    c = cluster.Cluster(state_dir=args.state_dir, data_dir=data_dir, settings_env=settings_env)
    c.start(workers=args.workers, storm_workers=1, webserver_port=args.port)
    env_file = args.state_dir / "env.sh"
    env_file.write_text(c.env_script())
    print(f"scale-out cluster up: PostgreSQL 127.0.0.1:{c.pg_port}, Redis 127.0.0.1:"
          f"{c.redis_port}, {args.workers} step workers, 1 storm worker, the daemon"
          + (f", the UI on http://127.0.0.1:{args.port}" if args.port else ""))
    print(f"  data {data_dir}\n  logs {args.state_dir / 'logs'}")
    print(f"  point a shell at it: source {env_file}\n  stop it: make scaleout-down")
    return 0


def down(args: argparse.Namespace) -> int:
    c = cluster.Cluster.load(args.state_dir)
    if c is None:
        print(f"no cluster recorded in {args.state_dir}")
        return 0
    names = ", ".join(p.name for p in c.processes)
    c.stop()
    print(f"stopped {names}")
    return 0


def env(args: argparse.Namespace) -> int:
    c = cluster.Cluster.load(args.state_dir)
    if c is None:
        print(f"no cluster recorded in {args.state_dir}: `make scaleout-up` first",
              file=sys.stderr)
        return 1
    sys.stdout.write(c.env_script())
    return 0


def launch_backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from gridassets.definitions import defs
    from gridassets.scaleout import backfill

    instance = dg.DagsterInstance.get()
    backfill_id = backfill.launch(instance, defs, args.start, args.end,
                                  models=not args.no_models)
    print(f"backfill {backfill_id}: the daily graph {args.start}..{args.end}"
          + ("" if args.no_models else " and the models of its weeks"))
    if args.wait:
        report = backfill.wait(instance, backfill_id)
        print(report.table())
        print(f"{report.status} in {report.seconds:.0f} s")
        return 0 if report.succeeded else 1
    return 0


def demo(args: argparse.Namespace) -> int:
    from gridassets.scaleout import demo as demo_module

    return demo_module.main(args)


def bench(args: argparse.Namespace) -> int:
    from gridassets.scaleout import bench as bench_module

    return bench_module.main(args)


def add_parser(subparsers) -> None:
    from gridassets.cli import _day  # loaded by now: gridassets.cli calls this
    p = subparsers.add_parser("scaleout", help="a local scale-out cluster: up, down, env, "
                                               "backfill, demo")
    sub = p.add_subparsers(dest="scaleout_command", required=True)
    p_up = sub.add_parser("up", help="start PostgreSQL, Redis, Celery workers, the daemon and "
                                     "the UI as local processes")
    p_up.add_argument("--workers", type=int, default=3, help="step workers (default 3)")
    p_up.add_argument("--port", type=int, default=3000, help="UI port (default 3000)")
    p_up.set_defaults(func=up)
    p_down = sub.add_parser("down", help="stop the cluster `up` started")
    p_down.set_defaults(func=down)
    p_env = sub.add_parser("env", help="print the settings that point a shell at the cluster")
    p_env.set_defaults(func=env)
    p_fill = sub.add_parser("backfill", help="backfill the daily graph (and the weeks' models) "
                                             "through the daemon")
    p_fill.add_argument("--start", type=_day, required=True)
    p_fill.add_argument("--end", type=_day, required=True)
    p_fill.add_argument("--no-models", action="store_true",
                        help="only the daily assets, not the weekly models")
    p_fill.add_argument("--wait", action="store_true", help="wait for it and print its runs")
    p_fill.set_defaults(func=launch_backfill)
    p_demo = sub.add_parser("demo", help="backfill 10 days on a local cluster with a storm alert "
                                         "during it, checked against the embedded build")
    p_demo.add_argument("--days", type=int, default=10)
    p_demo.add_argument("--workers", type=int, default=3)
    p_demo.add_argument("--root", help="work folder (default: a temporary one, removed after)")
    p_demo.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p_demo.set_defaults(func=demo)
    p_bench = sub.add_parser("bench", help="a 30-day backfill in one process and on 1, 2, 3 "
                                           "workers (bench-scaleout.json)")
    p_bench.add_argument("--scale", choices=("demo", "utility"), default="demo")
    p_bench.add_argument("--days", type=int, default=30)
    p_bench.add_argument("--workers", default="1,2,3", help="worker counts, e.g. 1,2,3")
    p_bench.add_argument("--root", help="work folder (default: a temporary one, kept)")
    p_bench.add_argument("--write-docs", action="store_true",
                         help="write the table into docs/scaleout.md")
    p_bench.set_defaults(func=bench)
    for q in (p_up, p_down, p_env):
        q.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
