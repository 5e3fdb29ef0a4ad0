"""Weekly models and their registry."""

import dagster as dg

from gridassets.defs.models.assets import maintenance_model, outage_model

defs = dg.Definitions(assets=[maintenance_model, outage_model])
