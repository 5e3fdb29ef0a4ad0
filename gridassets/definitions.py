"""The one Definitions object of gridassets (`dagster ... -m gridassets.definitions`).

Each area of the graph (gridassets/defs/<area>/) declares its own Definitions; this module merges
them and adds what they share: the resources and the executor.
"""

import dagster as dg

from gridassets.defs import (
    features,
    fleet,
    forecasting,
    integrity,
    models,
    ops,
    raw,
    scores,
    storms,
)
from gridassets.defs.ops.recovery import run_worker_executor
from gridassets.defs.partitions import explain_unknown_partitions
from gridassets.defs.policies import DEPLOYMENT
from gridassets.defs.resources import build_resources


def _scaleout_executor() -> dg.ExecutorDefinition:
    from gridassets.scaleout.executor import scaleout_executor

    return scaleout_executor


AREAS = (fleet, raw, integrity, features, models, forecasting, scores, storms, ops)

# `dagster asset materialize --partition 2023-01-01`: one line with the valid range, not a traceback.
explain_unknown_partitions()

defs = dg.Definitions.merge(
    *(area.defs for area in AREAS),
    dg.Definitions(
        resources=build_resources(),
        # DuckDB has one writer anyway, and a process per step costs ~1.5 s on small machines.
        # Dagster's in-process executor, plus: the run is tagged with its process, dead runs are
        # reaped and their pool slots freed, and a wait for a slot stops on Ctrl-C
        # (gridassets/defs/ops/recovery.py).
        # Scale-out (GRIDASSETS_MODE=scaleout): each step a Celery task (gridassets/scaleout/).
        executor=_scaleout_executor() if DEPLOYMENT.scaleout else run_worker_executor,
    ),
)
