"""The one Definitions object of gridassets (`dagster ... -m gridassets.definitions`).

Each area of the graph (gridassets/defs/<area>/) declares its own Definitions; this module merges
them and adds what they share: the resources and the executor.
"""

import dagster as dg

from gridassets.defs import features, fleet, forecasting, models, ops, raw, scores, storms
from gridassets.defs.resources import build_resources

AREAS = (fleet, raw, features, models, forecasting, scores, storms, ops)

defs = dg.Definitions.merge(
    *(area.defs for area in AREAS),
    dg.Definitions(
        resources=build_resources(),
        # DuckDB has one writer anyway, and a process per step costs ~1.5 s on small machines.
        executor=dg.in_process_executor,
    ),
)
