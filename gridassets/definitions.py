"""The one Definitions object of gridassets (`dagster ... -m gridassets.definitions`)."""

import dagster as dg

from gridassets.defs.fleet.assets import circuits, transformers
from gridassets.defs.raw.assets import raw_assets
from gridassets.defs.resources import build_resources

defs = dg.Definitions(
    assets=[circuits, transformers, *raw_assets],
    resources=build_resources(),
    # DuckDB has one writer anyway, and a process per step costs ~1.5 s on small machines.
    executor=dg.in_process_executor,
)
