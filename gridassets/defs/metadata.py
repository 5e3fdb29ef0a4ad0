"""Metadata a person wants to see on an asset: column schema, a preview, images."""


import base64
import math
import re
from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd

from gridassets.domain.schemas import COLUMN_DESCRIPTIONS, TableSpec

_TYPES = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN",
          "date": "DATE", "timestamp": "TIMESTAMP"}


def spec_schema(spec: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name, type=_TYPES[c.dtype], description=c.description or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in spec.columns
        ]
    )


def frame_schema(frame: pd.DataFrame, descriptions: TableSpec | Mapping[str, str] | None = None
                 ) -> dg.TableSchema:
    """The column schema of `frame`, each column described by `descriptions` (a table's contract
    or a name -> text mapping), else by the contract of any table that has a column of that name."""
    own = ({c.name: c.description for c in descriptions.columns}
           if isinstance(descriptions, TableSpec) else dict(descriptions or {}))
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(n), type=str(t),
                           description=own.get(str(n)) or COLUMN_DESCRIPTIONS.get(str(n)) or None)
            for n, t in frame.dtypes.items()
        ]
    )


# Numbers a person reads: three significant digits, never fewer than the whole part, never
# scientific notation. A figure of these models is no better than that.
SIGNIFICANT_DIGITS = 3
MAX_DECIMALS = 6
# Text longer than LONG_TEXT (a reason, a list of signals) goes under a metadata table as a list,
# cut at MAX_TEXT characters: the whole text is in the table and the CSV.
LONG_TEXT = 40
MAX_TEXT = 240
# The UI shows markdown shorter than INLINE_MARKDOWN characters inline in the metadata table, in a
# cell about INLINE_CHARS characters wide.
INLINE_MARKDOWN = 1000
INLINE_CHARS = 50
# The unit of a table column whose name does not say it, shown in the header of metadata tables.
COLUMN_UNITS = {
    "priority_score": "cust-min/7d", "outage_score": "cust-min/7d",
    "transformer_score": "cust-min/7d", "vegetation_score": "cust-min/7d",
    "loading_score": "cust-min/7d", "mape": "%", "mape_prev_day": "%", "mape_prev_week": "%",
    "coverage": "%", "rmse": "MW", "tree_canopy_pct": "%",
}


def decimals(value: float) -> int:
    """Decimals that show `value` to SIGNIFICANT_DIGITS (all of its whole part, at most
    MAX_DECIMALS): 110737.2 -> 0, 89.79 -> 1, 4.038 -> 2, 0.01234 -> 4."""
    if not math.isfinite(value) or value == 0:
        return 0
    whole_digits = math.floor(math.log10(abs(value))) + 1
    return max(0, min(MAX_DECIMALS, SIGNIFICANT_DIGITS - whole_digits))


def round_number(value: float) -> float:
    """`value` rounded for reading (4.037982895142489 -> 4.04, 89.79166666666667 -> 89.8)."""
    value = float(value)
    return round(value, decimals(value)) if math.isfinite(value) else value


def format_number(value) -> str:
    """A number as a table shows it: rounded, thousands separated, never in scientific
    notation (110737.2 -> "110,737", 4.037982 -> "4.04", 0.000123 -> "0.000123")."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    places = decimals(value)
    return f"{round(value, places):,.{places}f}"


def readable(metadata: Mapping) -> dict:
    """`metadata` with every float (plain or dg.MetadataValue.float) rounded by `round_number`."""
    out = {}
    for key, value in metadata.items():
        if isinstance(value, (float, np.floating)):
            value = round_number(value)
        elif isinstance(value, dg.FloatMetadataValue) and value.value is not None:
            value = dg.MetadataValue.float(round_number(value.value))
        out[key] = value
    return out


def per_partition(context: dg.AssetExecutionContext, numbers: Mapping[str, Mapping[str, float]],
                  asset_key: dg.AssetKey | str | None = None) -> None:
    """Numbers of each partition of a run (partition key -> name -> number), so that the asset's
    Plots tab draws one point per partition. A range run otherwise gives every partition the
    output's metadata: the last day's numbers, drawn as a flat segment."""
    for key, values in numbers.items():
        context.add_asset_metadata(readable(values), asset_key=asset_key, partition_key=key)


def markdown_table(frame: pd.DataFrame, max_rows: int = 10,
                   units: Mapping[str, str] | None = None) -> str:
    """A small markdown table (no extra dependency): numbers rounded by `format_number`, units in
    the headers (`units` over COLUMN_UNITS). Long text columns (a reason, signals) follow the table
    as a list, one item per row named by its id, cut at MAX_TEXT characters: in a table they
    would squeeze or push out the numbers (the UI shows a short table inline, in a narrow cell)."""
    units = {**COLUMN_UNITS, **(units or {})}
    head = frame.head(max_rows)
    long_text = [c for c in head.columns if any(
        isinstance(v, str) and len(v) > LONG_TEXT for v in head[c])]
    short = [c for c in head.columns if c not in long_text]
    key = next((c for c in short if str(c).endswith("_id")), short[0] if short else None)
    cols = [f"{c} ({units[str(c)]})" if units.get(str(c)) else str(c) for c in short]

    lines = []
    if short:
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
                  for row in head[short].itertuples(index=False)]
    for column in long_text:
        items = [(_cell(k) if key is not None else str(i + 1), _cell(v))
                 for i, (k, v) in enumerate(zip(head[key] if key is not None else head.index,
                                                head[column]))]
        lines += ["", f"**{column}**", ""]
        lines += [f"- **{k}**: {_cut(v)}" for k, v in items if v]
    if len(frame) > max_rows:
        lines.append(f"\n_{max_rows} of {len(frame):,} rows_")
    text = "\n".join(lines)
    width = sum(max([len(c), *map(len, map(_cell, head[s]))]) + 3 for c, s in zip(cols, short))
    if width > INLINE_CHARS:
        # Dagster shows markdown shorter than 1,000 characters inline, in a cell about 50
        # characters wide that cuts a wider table off; longer markdown opens in a wide dialog.
        # Trailing spaces (which markdown does not render) send a wide table to the dialog.
        text = text.ljust(INLINE_MARKDOWN)
    return text


def _cell(v) -> str:
    if v is None or v is pd.NaT or (isinstance(v, (float, np.floating)) and pd.isna(v)):
        return ""
    if isinstance(v, (int, float, np.number)):
        return format_number(v)
    if isinstance(v, pd.Timestamp) and v == v.normalize():
        return v.strftime("%Y-%m-%d")
    return str(v).replace("\n", " ")


def _cut(text: str) -> str:
    """`text` cut at MAX_TEXT characters, its markdown characters escaped (shown as written)."""
    text = text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1].rstrip() + "\u2026"
    return re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", text)


def preview(frame: pd.DataFrame, max_rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, max_rows))


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The UTC days of the partition (or single-run range) being materialized."""
    window = context.partition_time_window
    first = window.start.date()
    n = (window.end.date() - first).days
    return [first + timedelta(days=i) for i in range(n)]


def check_result(name: str, outcome, asset_key: str | None = None,
                 severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
                 ) -> dg.AssetCheckResult:
    """An AssetCheckResult from a domain CheckOutcome (summary as description, details as metadata)."""
    metadata = {"summary": outcome.summary}
    for key, value in outcome.details.items():
        metadata[key] = dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
    return dg.AssetCheckResult(
        check_name=name, passed=outcome.passed, description=outcome.summary,
        metadata=readable(metadata),
        asset_key=asset_key, severity=severity,
    )
