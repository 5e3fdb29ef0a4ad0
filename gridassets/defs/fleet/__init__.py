"""The fleet registry."""

import dagster as dg

from gridassets.defs.fleet.assets import circuits, transformers

defs = dg.Definitions(assets=[circuits, transformers])
