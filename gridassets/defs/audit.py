"""Write-audit-publish for assets: audit the staged rows, then hand them to the warehouse or refuse.

A blocking check in Dagster runs after the IO manager has stored the output, too late to keep bad
rows out. So an asset with checks computes its frame (the staged rows), runs the checks' logic on
it and only then decides:
- every blocking check passed: the frame is yielded as the output (the IO manager replaces the
  partition in one transaction), then the check results, which attach to the new materialization;
- a blocking check failed: the check results are yielded (the UI shows them failed) and the step
  fails naming the check, without an output, so the stored partition is untouched.
"""

from collections.abc import Iterator, Mapping

import dagster as dg
import pandas as pd

from gridassets.defs.metadata import check_result, readable
from gridassets.domain.quality import CheckOutcome
from gridassets.storage import inputs


def audited_output(asset: str, frame: pd.DataFrame, outcomes: Mapping[str, CheckOutcome], *,
                   scope: str, metadata: Mapping | None = None,
                   warn_only: frozenset[str] = frozenset()) -> Iterator:
    """The events of an audited write of `frame` (`scope` says which partitions, e.g. "2025-06-01").

    Checks named in `warn_only` are reported with WARN severity and never refuse the write.
    Raises dg.Failure (not retried: the same rows fail the same way) when a blocking check failed.
    """
    results = [_result(name, o, name in warn_only) for name, o in outcomes.items()]
    refused = [(name, o) for name, o in outcomes.items() if not o.passed and name not in warn_only]
    if refused:
        yield from results
        reasons = "; ".join(f"check '{name}' failed: {o.summary}" for name, o in refused)
        raise dg.Failure(
            description=f"{asset} {scope}: {reasons}. Nothing was written: the stored rows are "
                        "as they were.",
            metadata={"failed_checks": ", ".join(name for name, _ in refused)},
            allow_retries=False,
        )
    yield dg.Output(frame, metadata=readable(metadata or {}))
    yield from results


def _result(name: str, outcome: CheckOutcome, warn: bool) -> dg.AssetCheckResult:
    return check_result(name, outcome, severity=dg.AssetCheckSeverity.WARN if warn
                        else dg.AssetCheckSeverity.ERROR)


def scope_of(days) -> str:
    """"2025-06-01" or "2025-06-01..2025-06-07" for the days of a partition or range."""
    days = list(days)
    if not days:
        return "(no days)"
    return str(days[0]) if len(days) == 1 else f"{days[0]}..{days[-1]}"


def require_inputs(con, asset: str, days, tables: Mapping[str, str | None]) -> None:
    """Fail, naming what to materialize first, unless every input has rows for every day.

    `tables` maps an input table to its time column, or to None for an unpartitioned table that
    must merely not be empty (the registry). Raises dg.Failure (not retried: a missing input does
    not appear by waiting).
    """
    days = list(days)
    problems: dict[str, str] = {}  # missing table -> what to do about it
    for table, column in tables.items():
        if column is None:
            if inputs.row_count(con, table) == 0:
                problems[table] = f"{table} is empty or absent: materialize {table} first"
            continue
        present = inputs.days_present(con, table, column, days)
        absent = [d for d in days if d not in present]
        if absent:
            problems[table] = (f"no {table} for {_spans(absent)}: materialize {table} for "
                               f"{'that day' if len(absent) == 1 else 'those days'} first")
    if problems:
        raise dg.Failure(
            description=f"{asset} {scope_of(days)}: " + "; ".join(problems.values())
                        + ". Nothing was written.",
            metadata={"missing_inputs": ", ".join(problems)},
            allow_retries=False,
        )


def _spans(days) -> str:
    """Consecutive days as ranges: "2025-06-01..2025-06-03, 2025-06-07"."""
    spans, start, prev = [], None, None
    for d in sorted(days):
        if prev is not None and (d - prev).days == 1:
            prev = d
            continue
        if start is not None:
            spans.append(str(start) if start == prev else f"{start}..{prev}")
        start = prev = d
    spans.append(str(start) if start == prev else f"{start}..{prev}")
    return ", ".join(spans)
