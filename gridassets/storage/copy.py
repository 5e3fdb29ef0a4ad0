"""Copy the warehouse from one backend into the other (DuckDB file <-> Delta lake), then check it.

`copy_warehouse(source, target)` copies every table of `source` into `target` through the
target's own write path, `publish` (write-audit-publish; on Delta each write is one commit that
tags every row with its `_partition`): an unpartitioned table in one write, a partitioned one a
few partitions per write, each write naming exactly the partitions it holds. Columns keep their
order and their DuckDB types (rows travel as Arrow, never as NumPy, so an integer column with
NULLs stays an integer column and a DATE stays a DATE).

Then it checks the copy: the same tables, the same columns in the same order with the same types,
and per partition the same number of rows and the same checksum (the sum of DuckDB's `hash` of
every row, over the columns in the source's order: equal rows give equal sums whatever stores
them). On Delta it also checks that every row's `_partition` is the partition its column says.

How each table is partitioned (the column and whether by day, by week or by value) comes from the
Dagster asset definitions, the one place that says it (`partition_expr` and the partitions
definition): read once, by `partitioning_from_definitions`, and passed on as plain data.

The copy refuses a target that already holds tables unless `replace` is given, in which case they
are deleted first. Nothing else may use either warehouse while it runs: stop the daemon, the UI
and any runs first (a write to the source during the copy shows up as a mismatch, and a process
that read a Delta table keeps its view of the files that a replace deletes).

`python -m gridassets warehouse copy --to delta` (or `--to duckdb`) copies the warehouse in use
(GRIDASSETS_WAREHOUSE) into the other backend in the same data folder; see `main`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from gridassets.settings import BACKENDS, Settings, SettingsError
from gridassets.storage import backend
from gridassets.storage import publish as wap

# The run id that the copy's writes carry in the publish record (ops.partition_publishes on
# DuckDB, the commit info on Delta).
RUN_ID = "warehouse-copy"
# Tables a backend keeps for itself, not copied: DuckDB's publish log (Delta keeps the same record
# in each commit's info; the copy's own writes are recorded in the target as usual).
BOOKKEEPING = frozenset({"ops.partition_publishes"})
# Rows per write of a partitioned table: a few days of utility-scale telemetry; whole partitions.
BATCH_ROWS = 500_000
DELTA_PARTITION = "_partition"  # see gridassets/storage/delta.py
# A time partition's period -> (Dagster's cron, its key format, its length). Weeks start Monday.
PERIODS = {
    "hour": ("0 * * * *", "%Y-%m-%d-%H:%M", timedelta(hours=1)),
    "day": ("0 0 * * *", "%Y-%m-%d", timedelta(days=1)),
    "week": ("0 0 * * 1", "%Y-%m-%d", timedelta(days=7)),
}


class CopyError(RuntimeError):
    """The copy cannot start or cannot go on; the message names the table or warehouse."""


class CopyRefused(CopyError):
    """The target already holds tables and `replace` was not given; nothing was written."""


@dataclass(frozen=True)
class Partitioning:
    """How a table's rows map to Dagster partition keys.

    `period` "hour": the key is the UTC hour of `column` ('YYYY-MM-DD-HH:00'); "day": its UTC day
    ('YYYY-MM-DD'); "week": the Monday of its week; None: the value of `column` itself (a storm
    id)."""

    column: str
    period: str | None = None

    def __post_init__(self) -> None:
        if self.period not in (*PERIODS, None):
            raise ValueError(f"period must be one of {tuple(PERIODS)} or None; "
                             f"got {self.period!r}")

    def key_sql(self) -> str:
        """SQL for the partition key (text) of a row."""
        col = f'"{self.column}"'
        if self.period == "hour":
            return f"strftime(date_trunc('hour', cast({col} as timestamp)), '%Y-%m-%d-%H:%M')"
        if self.period == "day":
            return f"strftime(cast({col} as timestamp), '%Y-%m-%d')"
        if self.period == "week":
            return f"strftime(date_trunc('week', cast({col} as timestamp)), '%Y-%m-%d')"
        return f"cast({col} as varchar)"

    def slice(self, schema: str, table: str, keys: Sequence[str]) -> wap.Slice:
        """The slice holding exactly the partitions `keys` of the table."""
        if self.period is None:
            return wap.Slice(schema, table, self.column, keys=tuple(keys))
        _, fmt, span = PERIODS[self.period]
        windows = []
        for key in keys:
            start = datetime.strptime(key, fmt)
            windows.append(wap.PartitionWindow(key, start, start + span))
        return wap.Slice(schema, table, self.column, windows=tuple(windows))


def partitioning_from_definitions(defs=None) -> dict[str, Partitioning]:
    """Table name -> Partitioning of every partitioned asset of the graph (its `partition_expr`
    metadata and its partitions definition). Raises CopyError for a partitions definition the copy
    does not know how to key (not hourly, daily or Monday-weekly in UTC, nor one key per value)."""
    import dagster as dg  # the definitions are the one place that says how tables are partitioned

    if defs is None:
        from gridassets.definitions import defs
    out: dict[str, Partitioning] = {}
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        pdef = node.partitions_def
        if pdef is None or not node.is_materializable:
            continue
        name = key.path[-1]
        column = (node.metadata or {}).get("partition_expr")
        if not column:
            raise CopyError(f"{key.to_user_string()} is partitioned but names no partition_expr")
        if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
            period = next((p for p, (cron, fmt, _) in PERIODS.items()
                           if cron == pdef.cron_schedule and fmt == pdef.fmt), None)
            if period is None or pdef.timezone != "UTC":
                raise CopyError(
                    f"{key.to_user_string()}: partitions {pdef.cron_schedule!r} in "
                    f"{pdef.timezone}, keys {pdef.fmt!r}: the copy knows UTC hours keyed "
                    "YYYY-MM-DD-HH:00, and days and weeks starting Monday keyed YYYY-MM-DD")
            out[name] = Partitioning(str(column), period)
        else:
            out[name] = Partitioning(str(column), None)
    return out


@dataclass
class TableCheck:
    """One table's copy: rows and partitions in the source, and what did not match."""

    name: str
    rows: int
    partitions: int  # 0 for an unpartitioned table
    problems: list[str] = field(default_factory=list)


@dataclass
class CopyReport:
    source: str
    target: str
    tables: list[TableCheck] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # not about one table (extra tables)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(t.problems for t in self.tables)

    def all_problems(self) -> list[str]:
        return self.problems + [f"{t.name}: {p}" for t in self.tables for p in t.problems]


@dataclass(frozen=True)
class _Shape:
    """What is compared per table: columns and types in order, and per partition key the rows
    and the checksum."""

    columns: list[tuple[str, str]]
    partitions: dict[str, tuple[int, int]]  # key ('' unpartitioned) -> (rows, checksum)

    @property
    def rows(self) -> int:
        return sum(n for n, _ in self.partitions.values())


def _named(store: backend.Warehouse) -> str:
    return f"the {store.kind} warehouse {store.location}"


def copy_warehouse(source: backend.Warehouse, target: backend.Warehouse,
                   log: Callable[[str], None] = print, *, replace: bool = False,
                   partitioning: Mapping[str, Partitioning] | None = None) -> CopyReport:
    """Copy every table of `source` into `target`, then check the copy; returns the report.

    Raises CopyRefused when `target` holds tables and `replace` is false (nothing is written);
    CopyError when there is nothing to copy, a table cannot be keyed (checked before anything is
    written) or a write fails (naming the table and partitions; the target then holds a partial
    copy). A mismatch found by the check is in the report (`ok` is false), not raised.
    `partitioning` defaults to `partitioning_from_definitions()`."""
    if source.kind == target.kind:
        raise CopyError(f"{_named(source)} and {_named(target)} are the same backend")
    stored = source.tables()
    tables = [t for t in stored if t not in BOOKKEEPING]
    if not tables:
        raise CopyError(f"nothing to copy: {_named(source)} holds no tables")
    present = target.tables()
    if present and not replace:
        listed = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise CopyRefused(
            f"{_named(target)} already holds {len(present)} table(s) ({listed}); nothing was "
            "copied. Pass --replace to delete them and copy, or copy into another data folder.")
    schemes = dict(partitioning_from_definitions() if partitioning is None else partitioning)
    report = CopyReport(_named(source), _named(target),
                        skipped=[t for t in stored if t in BOOKKEEPING])
    with source.connect(read_only=True) as con:
        # Every read on one snapshot (a Delta connection's views are on one already).
        con.execute("begin transaction")
        plan = [(t, _scheme(source, con, t, schemes)) for t in tables]
        shapes = {t: _shape(con, t, scheme) for t, scheme in plan}
        if present:
            _delete(target, present, log)
        for table, scheme in plan:
            _copy_table(con, target, table, scheme, shapes[table], log)
        con.execute("commit")
    _check(target, plan, shapes, report, log)
    return report


def _scheme(source: backend.Warehouse, con: duckdb.DuckDBPyConnection, table: str,
            schemes: Mapping[str, Partitioning]) -> Partitioning | None:
    """The partitioning of a source table, checked against what the source holds."""
    schema, name = table.split(".")
    scheme = schemes.get(name)
    columns = [c for c, _ in _columns(con, table)]
    if scheme is not None and scheme.column not in columns:
        raise CopyError(f"{table} has no column {scheme.column}, which its asset partitions by")
    if scheme is None and source.kind == "delta" and _delta_partitioned(source, schema, name):
        raise CopyError(f"{table} is partitioned in {_named(source)}, but no asset of the "
                        "graph says by which column: it cannot be copied")
    return scheme


def _delta_partitioned(store, schema: str, name: str) -> bool:
    table = store.table(schema, name)
    return table is not None and DELTA_PARTITION in table.metadata().partition_columns


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe select * from {table}").fetchall()]  # sql-identifier: a table the warehouse lists


def _shape(con: duckdb.DuckDBPyConnection, table: str, scheme: Partitioning | None,
           order: Sequence[str] | None = None) -> _Shape:
    """Columns, and rows and checksum per partition key of `table` on `con`; the checksum hashes
    the columns in `order` (default: the table's own). Raises CopyError for rows in no
    partition (no value in the partition column)."""
    columns = _columns(con, table)
    names = list(order) if order is not None else [c for c, _ in columns]
    row_hash = f"hash({', '.join(_quoted(c) for c in names)})" if names else "0"
    key = scheme.key_sql() if scheme is not None else "''"
    rows = con.execute(
        f"select {key} as k, count(*), coalesce(sum({row_hash}), 0) from {table} group by k"  # sql-identifier: quoted columns, listed table
    ).fetchall()
    partitions = {k: (int(n), int(h)) for k, n, h in rows}
    if None in partitions:
        raise CopyError(f"{table}: {partitions[None][0]} row(s) have no {scheme.column}, so "
                        "they belong to no partition: fix or delete them, then copy again")
    return _Shape(columns, partitions)


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _delete(target: backend.Warehouse, tables: Sequence[str], log: Callable[[str], None]) -> None:
    """Delete every table of the target (--replace)."""
    log(f"replacing {_named(target)}: deleting its {len(tables)} table(s)")
    if target.kind == "delta":
        for table in tables:
            shutil.rmtree(target.path_of(*table.split(".")))
        return
    with target.connect() as con:
        con.begin()
        for table in tables:
            con.execute(f"drop table {table}")  # sql-identifier: a table the warehouse lists
        con.commit()


def _batches(partitions: Mapping[str, tuple[int, int]]) -> list[list[str]]:
    """The partition keys in order, grouped into writes of at most BATCH_ROWS rows (a partition
    is never split; one bigger than that is a write of its own)."""
    batches: list[list[str]] = []
    rows = BATCH_ROWS
    for key in sorted(partitions):
        n = partitions[key][0]
        if rows + n > BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(key)
        rows += n
    return batches


def _copy_table(con: duckdb.DuckDBPyConnection, target: backend.Warehouse, table: str,
                scheme: Partitioning | None, shape: _Shape, log: Callable[[str], None]) -> None:
    schema, name = table.split(".")
    if scheme is None:
        writes = [(wap.Slice(schema, name), "true", [])]
    else:
        writes = []
        for keys in _batches(shape.partitions) or [[]]:  # [[]]: an empty table, created empty
            target_slice = scheme.slice(schema, name, keys)
            writes.append((target_slice, *target_slice.where()))
    for target_slice, where, params in writes:
        frame = con.sql(f"select * from {table} where {where}", params=params).to_arrow_table()  # sql-identifier: listed table, ?-condition
        # Arrow-backed columns keep every DuckDB type (NumPy would turn an integer column with
        # NULLs into floats and a DATE into a timestamp).
        try:
            target.publish(target_slice, frame.to_pandas(types_mapper=pd.ArrowDtype),
                           asset=name, run_id=RUN_ID, log=log)
        except (wap.PublishRefused, duckdb.Error, OSError) as exc:
            keys = target_slice.partition_keys
            what = f"partitions {keys[0]}..{keys[-1]}" if keys else "the table"
            raise CopyError(
                f"{table}: writing {what} into {_named(target)} failed ({exc}). The target "
                "holds a partial copy: fix the cause, then copy again with --replace.") from exc
    parts = f" in {len(shape.partitions)} partition(s)" if scheme is not None else ""
    log(f"copied {table}: {shape.rows:,} rows{parts}, {len(writes)} write(s)")


def _check(target: backend.Warehouse, plan: list[tuple[str, Partitioning | None]],
           shapes: Mapping[str, _Shape], report: CopyReport, log: Callable[[str], None]) -> None:
    copied = {t for t, _ in plan}
    extra = sorted(set(target.tables()) - copied - BOOKKEEPING)
    if extra:
        report.problems.append(f"{_named(target)} holds tables the source lacks: "
                               f"{', '.join(extra)}")
    with target.connect(read_only=True) as con:
        present = {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        for table, scheme in plan:
            source = shapes[table]
            check = TableCheck(table, source.rows, len(source.partitions) if scheme else 0)
            report.tables.append(check)
            if table not in present:
                check.problems.append("missing from the target")
                continue
            columns = _columns(con, table)
            if columns != source.columns:
                check.problems.append(f"columns differ: source {_typed(source.columns)}; "
                                      f"target {_typed(columns)}")
                # Rows can still be counted; checksums over other columns cannot be compared.
                check.problems += _differences(source, _shape(con, table, scheme),
                                               checksums=False)
                continue
            stored = _shape(con, table, scheme, order=[c for c, _ in source.columns])
            check.problems += _differences(source, stored)
    if target.kind == "delta":
        for table, scheme in plan:
            if scheme is not None:
                check = next(c for c in report.tables if c.name == table)
                check.problems += _mislabelled(target, table, scheme)
    for check in report.tables:
        what = f"{check.rows:,} rows" + (f", {check.partitions} partitions" if check.partitions
                                         else "")
        verdict = "; ".join(check.problems) or "rows, checksums and column types equal"
        log(f"checked {check.name}: {what}: {verdict}")


def _differences(source: _Shape, stored: _Shape, checksums: bool = True) -> list[str]:
    """What differs per partition: the rows, or (the same number of rows) the checksums."""
    bad = []
    for key in sorted(set(source.partitions) | set(stored.partitions)):
        (n1, h1), (n2, h2) = source.partitions.get(key, (0, 0)), stored.partitions.get(key, (0, 0))
        if n1 != n2:
            bad.append(f"{key or '(table)'}: {n1:,} rows in the source, {n2:,} in the target")
        elif checksums and h1 != h2:
            bad.append(f"{key or '(table)'}: {n1:,} rows in both, checksums differ")
    if not bad:
        return []
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    return [f"{len(bad)} partition(s) differ ({'; '.join(bad[:3])}{more})"]


def _typed(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{c} {t}" for c, t in columns)


def _mislabelled(target, table: str, scheme: Partitioning) -> list[str]:
    """Rows of a Delta table whose `_partition` is not the partition their column says."""
    schema, name = table.split(".")
    stored = target.table(schema, name)
    if stored is None:
        return []
    with duckdb.connect() as con:
        con.register("_copied", stored.to_pyarrow_dataset())
        wrong = con.execute(
            f"select count(*) from _copied where {DELTA_PARTITION} is distinct from "
            f"{scheme.key_sql()}").fetchall()[0][0]
    return [f"{wrong} row(s) carry a {DELTA_PARTITION} other than their partition"] if wrong else []


# --- the command ----------------------------------------------------------------------------------
def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", choices=BACKENDS, required=True,
                        help="the backend to copy into: the one GRIDASSETS_WAREHOUSE does not "
                             "name, in the same data folder")
    parser.add_argument("--replace", action="store_true",
                        help="delete the tables the target already holds, then copy")


def add_parser(subparsers) -> None:
    """`warehouse copy` under the `python -m gridassets` subcommands (gridassets/cli.py)."""
    parser = subparsers.add_parser("warehouse", help="operate on the warehouse")
    commands = parser.add_subparsers(dest="warehouse_command", required=True)
    copy = commands.add_parser(
        "copy", help="copy every table into the other backend (DuckDB file <-> Delta lake) "
                     "and check rows, checksums and types per partition")
    _arguments(copy)
    copy.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Copy the warehouse in use into the `--to` backend; 0 when the check finds them equal."""
    settings = Settings.from_env()
    if args.to == settings.backend:
        print(f"gridassets warehouse copy: the warehouse in use is already {args.to} "
              f"(GRIDASSETS_WAREHOUSE={settings.backend}); copy --to the other backend, or set "
              "GRIDASSETS_WAREHOUSE to the one to copy from", file=sys.stderr)
        return 2
    source = backend.open_warehouse(settings)
    target = backend.open_warehouse(settings.with_(backend=args.to))
    print(f"copying {_named(source)} into {_named(target)}")
    try:
        report = copy_warehouse(source, target, log=lambda line: print(f"  {line}", flush=True),
                                replace=args.replace)
    except CopyError as exc:
        print(f"gridassets warehouse copy: {exc}", file=sys.stderr)
        return 1
    if report.skipped:
        print(f"  not copied (the source backend's own bookkeeping): {', '.join(report.skipped)}")
    if not report.ok:
        print(f"gridassets warehouse copy: the copy in {target.location} does not match the "
              "source:", file=sys.stderr)
        for problem in report.all_problems():
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{len(report.tables)} tables copied and checked. To use the copy, set "
          f"GRIDASSETS_WAREHOUSE={args.to} for every process (daemon, UI, CLI).")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m gridassets.storage.copy --to delta|duckdb [--replace]`."""
    parser = argparse.ArgumentParser(prog="python -m gridassets warehouse copy",
                                     description=__doc__.split("\n\n")[0])
    _arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SettingsError as exc:
        print(f"gridassets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
