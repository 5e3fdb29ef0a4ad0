"""Dagster definitions of gridassets, one folder per area of the graph."""

import warnings

import dagster as dg

# Single-run backfill policies and pools are what the project relies on; their beta labels are
# noise in every command's output.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
