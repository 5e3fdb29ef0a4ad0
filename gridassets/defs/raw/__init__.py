"""Raw daily tables."""

import dagster as dg

from gridassets.defs.raw.assets import raw_assets

defs = dg.Definitions(assets=list(raw_assets))
