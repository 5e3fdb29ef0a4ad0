"""Audits of computed tables (features, scores, the list) before they are published.

Each audit takes the staged rows and returns a `CheckOutcome`; the assets run them as blocking
checks before the write (write-audit-publish), so a list with holes, duplicate circuits, or scores
that are not numbers never replaces a stored one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

import numpy as np
import pandas as pd

from gridassets.domain.quality import MAX_EXAMPLES, CheckOutcome


def check_rows(frame: pd.DataFrame, key: Sequence[str], days: Sequence[date], *,
               nonnegative: Sequence[str] = (), probabilities: Sequence[str] = (),
               filled: Sequence[str] = (), date_column: str = "date") -> CheckOutcome:
    """Every day of `days` has rows, `key` is unique, `nonnegative` columns are finite and >= 0,
    `probabilities` lie in [0, 1], and `filled` columns have no empty values."""
    problems: list[str] = []
    present = set(pd.to_datetime(frame[date_column]).dt.date) if len(frame) else set()
    missing = [d for d in days if d not in present]
    if missing:
        problems.append(f"no rows for {len(missing)} day(s), e.g. "
                        f"{', '.join(map(str, missing[:MAX_EXAMPLES]))}")
    dup = int(frame.duplicated(subset=list(key)).sum()) if len(frame) else 0
    if dup:
        problems.append(f"{dup} duplicate row(s) on {tuple(key)}")
    for col in nonnegative:
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            problems.append(f"{col}: {int(bad.sum())} value(s) not a finite number >= 0")
    for col in probabilities:
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        bad = ~np.isfinite(values) | (values < 0) | (values > 1)
        if bad.any():
            problems.append(f"{col}: {int(bad.sum())} value(s) not a probability in [0, 1]")
    for col in filled:
        empty = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if empty.any():
            problems.append(f"{col}: {int(empty.sum())} empty value(s)")
    if problems:
        return CheckOutcome(False, "; ".join(problems), {"problems": problems})
    return CheckOutcome(True, f"{len(frame):,} row(s) over {len(days)} day(s), keys unique, "
                              "values valid", {"rows": len(frame)})


def check_ranking(frame: pd.DataFrame, circuits: Collection[str],
                  score: str = "priority_score") -> CheckOutcome:
    """Each day's list ranks every registry circuit once, 1..N in order of `score`."""
    problems: list[str] = []
    known = set(map(str, circuits))
    for day, rows in frame.groupby("date"):
        label = pd.Timestamp(day).date()
        listed = rows["circuit_id"].astype(str)
        if set(listed) != known or listed.duplicated().any():
            missing = sorted(known - set(listed))
            problems.append(f"{label}: {len(set(listed) & known)} of {len(known)} circuits "
                            f"listed once" + (f", missing e.g. {missing[:MAX_EXAMPLES]}"
                                              if missing else ""))
            continue
        ordered = rows.sort_values("rank")
        if list(ordered["rank"]) != list(range(1, len(rows) + 1)):
            problems.append(f"{label}: ranks are not 1..{len(rows)}")
        elif (np.diff(ordered[score].to_numpy(dtype=float)) > 1e-9).any():
            problems.append(f"{label}: ranks do not follow {score}")
    if problems:
        return CheckOutcome(False, "; ".join(problems), {"problems": problems[:MAX_EXAMPLES]})
    return CheckOutcome(True, f"every one of {len(known)} circuits ranked once per day")
