"""The fleet registry: circuits and transformers (unpartitioned)."""


import dagster as dg
import pandas as pd

from gridassets.defs.audit import audited_output
from gridassets.defs.metadata import preview, spec_schema
from gridassets.defs.policies import DUCKDB_POOL, OWNERS, TRANSIENT_RETRY
from gridassets.defs.resources import FleetSource
from gridassets.domain import quality
from gridassets.domain.landing import LandingError
from gridassets.domain.schemas import CIRCUITS, TRANSFORMERS, TableSpec

REGISTRY_CHECKS = ("schema", "ranges", "duplicates", "references")


def registry_audit(spec: TableSpec, frame: pd.DataFrame, known_circuits: set[str] | None
                   ) -> dict[str, quality.CheckOutcome]:
    """The outcome of each blocking check on a registry's staged rows."""
    outcomes = {
        "schema": quality.check_schema(frame, spec),
        "ranges": quality.check_ranges(frame, spec),
        "duplicates": quality.check_duplicates(frame, spec),
    }
    if known_circuits is not None:
        unknown = sorted(set(frame["circuit_id"].astype(str)) - known_circuits)
        outcomes["references"] = quality.CheckOutcome(
            not unknown,
            f"{len(unknown)} transformer(s) on circuits not in the registry" if unknown
            else "every transformer is on a known circuit",
            {"unknown": unknown[:5]},
        )
    else:
        outcomes["references"] = quality.CheckOutcome(True, "circuits reference nothing")
    return outcomes


def _load(fleet: FleetSource, table: str) -> pd.DataFrame:
    try:
        return fleet.registry(table)
    except LandingError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _checks(spec: TableSpec) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=spec.name, blocking=True) for name in REGISTRY_CHECKS]


COMMON = dict(
    group_name="fleet", kinds={"duckdb", "pandas"}, owners=OWNERS, pool=DUCKDB_POOL,
    retry_policy=TRANSIENT_RETRY, metadata={"schema": "fleet"}, code_version="1",
)


@dg.asset(check_specs=_checks(CIRCUITS), **COMMON)
def circuits(context: dg.AssetExecutionContext, fleet: FleetSource):
    """The utility's distribution circuits: zone, customers, line length, trees and capacity."""
    frame = _load(fleet, "circuits")
    yield from audited_output("circuits", frame, registry_audit(CIRCUITS, frame, None),
                              scope="registry", metadata={
        "dagster/column_schema": spec_schema(CIRCUITS), "source": fleet.describe(),
        "customers": int(frame["customers"].sum()),
        "zones": ", ".join(sorted(frame["zone"].astype(str).unique())),
        "preview": preview(frame),
    })


@dg.asset(check_specs=_checks(TRANSFORMERS), **COMMON)
def transformers(context: dg.AssetExecutionContext, fleet: FleetSource):
    """The distribution transformers: rating, install year and the circuit each one is on."""
    frame = _load(fleet, "transformers")
    known = set(_load(fleet, "circuits")["circuit_id"].astype(str))
    yield from audited_output("transformers", frame, registry_audit(TRANSFORMERS, frame, known),
                              scope="registry", metadata={
        "dagster/column_schema": spec_schema(TRANSFORMERS), "source": fleet.describe(),
        "preview": preview(frame),
    })
