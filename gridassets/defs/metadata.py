"""Metadata a person wants to see on an asset: column schema, a preview, images."""


import base64
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from gridassets.domain.schemas import TableSpec

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


def frame_schema(frame: pd.DataFrame, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(n), type=str(t), description=descriptions.get(str(n)))
            for n, t in frame.dtypes.items()
        ]
    )


def markdown_table(frame: pd.DataFrame, max_rows: int = 10, floatfmt: str = "{:.3g}") -> str:
    """A small markdown table (no extra dependency)."""
    head = frame.head(max_rows)
    cols = [str(c) for c in head.columns]

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return ""
        if isinstance(v, float):
            return floatfmt.format(v)
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.itertuples(index=False)]
    if len(frame) > max_rows:
        lines.append(f"\n_{max_rows} of {len(frame):,} rows_")
    return "\n".join(lines)


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
        check_name=name, passed=outcome.passed, description=outcome.summary, metadata=metadata,
        asset_key=asset_key, severity=severity,
    )
