"""`make evaluate`: the project's figures of merit, measured on held-out time.

1. Extends the daily lists of the warehouse back to the first week both models can be trained
   (building the warehouse first if it is empty), so that the figures rest on as many days as the
   history allows;
2. model quality and the integration lift (`gridassets.evaluation.integration`);
3. load forecasts: the stored day-ahead forecasts against what happened, and against seasonal-naive
   baselines; the gain from the weather forecast's temperature and the intraday refresh by
   horizon, both replayed on the warehouse (`gridassets.evaluation.load_forecasts`); then real
   EIA-930 demand for ERCO and CISO against the grid operator's own day-ahead
   forecast (`gridassets.evaluation.eia`);
4. telemetry integrity: recall and time to detect per threat type against the simulator's hidden
   truth, false alarms per 1,000 clean device-days, the real ETTh1 and ETTh2 transformers through
   the landing path, and the failures behind a hidden oil sensor with and without the quarantine
   (`gridassets.evaluation.integrity`).
Writes `data/outputs/evaluation.json` and prints the figures.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from gridassets import results_doc, runner, warehouse
from gridassets.domain import models
from gridassets.domain.export import write_atomic_text
from gridassets.evaluation import integration, load_forecasts
from gridassets.evaluation import integrity as integrity_eval
from gridassets.settings import Settings
from gridassets.storage import evaluation as reads

# Days of features a week needs before both models can train (see models.training_window).
FIRST_TRAINABLE_DAYS = (models.MAINTENANCE.min_train_days + models.MAINTENANCE.purge_days
                        + models.HOLDOUT_DAYS + models.MAINTENANCE.label_lag_days + 1)


def first_list_day(history_start: date) -> date:
    """The first Monday whose models have enough history behind them."""
    return runner.monday(history_start + timedelta(days=FIRST_TRAINABLE_DAYS + 6))


def data_span(db: Path) -> tuple[date, date] | None:
    if not Path(db).exists():
        return None
    with warehouse.connect(db, read_only=True) as con:
        return reads.feature_span(con)


def evaluate(start: date, end: date, eia: bool = True, eia_origins: int | None = None,
             progress=print, docs: Path | None = None, section: str = "demo") -> dict:
    """The figures, printed and in evaluation.json; with `docs`, also in the page's section
    `evaluate:<section>` (docs/results.md under `make evaluate`)."""
    from gridassets.definitions import defs

    settings = Settings.from_env()
    instance = runner.instance()
    span = data_span(settings.warehouse)
    log = lambda label, seconds: progress(f"  {label:<48} {seconds:6.1f} s")  # noqa: E731
    if span is None:
        progress(f"building the warehouse {start}..{end} first")
        runner.build_daily_graph(defs, start, end, first_list_day(start), instance, on_step=log)
    else:
        start, end = span
        lists_from = first_list_day(start)
        progress(f"daily lists {lists_from}..{end} (models of the weeks in between)")
        for label, select, first, last in (
            ("models", runner.MODELS, lists_from, runner.monday(end)),
            ("scores", runner.SCORES, lists_from, end),
        ):
            t0 = time.monotonic()
            runner.materialize(defs, select, start=first.isoformat(), end=last.isoformat(),
                               dagster_instance=instance, log_level="WARNING")
            log(f"{label} {first}..{last}", time.monotonic() - t0)

    # From here on, what is printed is the report (kept for the docs).
    progress = results_doc.Tee(progress)
    simulator = None
    if settings.source == "synthetic":
        from gridassets.domain.fleet import FleetConfig, FleetSimulator

        simulator = FleetSimulator(FleetConfig(seed=settings.seed, n_circuits=settings.n_circuits,
                                               n_transformers=settings.n_transformers))
    ev = integration.evaluate(settings.warehouse, settings.models_dir, simulator)
    result = {
        "window": [str(start), str(end)],
        "scale": {"circuits": settings.n_circuits, "transformers": settings.n_transformers,
                  "seed": settings.seed, "source": settings.source},
        "maintenance": ev.maintenance,
        "outage": ev.outage,
        "integration_lift": ev.lift.to_dict(orient="records"),
        "outage_timing": ev.timing,
        "lift_days": ev.lift_days,
    }
    best, share = ev.best_single()
    integrated = float(ev.lift.loc[ev.lift["ranking"] == "integrated list", "captured"].iloc[0])
    result["integrated_vs_best_single"] = {"best_single": best, "ratio": integrated / share}
    progress("")
    progress(integration.format_report(ev))

    stored = stored_forecasts(settings.warehouse)
    if stored is not None:
        result["load_forecast"] = stored
        progress("\n" + format_stored(stored))
    gain = load_forecasts.forecast_temperature_gain(settings.warehouse)
    intra = load_forecasts.intraday_accuracy(settings.warehouse)
    result["load_forecast_temperature"] = gain
    result["intraday_load_forecast"] = intra
    if gain is not None or intra is not None:
        progress("\n" + load_forecasts.format_report(gain, intra))

    checked = integrity_eval.evaluate(settings.warehouse, settings.models_dir, simulator,
                                      integrity_eval.ETT_FOLDER)
    if checked is not None:
        result["telemetry_integrity"] = checked.to_dict()
        progress("\n" + integrity_eval.format_report(checked))

    if eia:
        from gridassets.evaluation import eia as eia_eval

        progress("\nLoad forecasts on EIA-930 (real demand) against the grid operator's "
                 "day-ahead forecast")
        kwargs = {"origins": eia_eval.default_origins()[:eia_origins]} if eia_origins else {}
        table = eia_eval.evaluate_eia(**kwargs)
        progress(eia_eval.format_table(table))
        result["eia"] = table.to_dict(orient="records")

    out = settings.outputs_dir / "evaluation.json"
    write_atomic_text(json.dumps(result, indent=2, default=str), out)
    progress(f"\nwritten to {out}")
    if docs is not None:
        results_doc.rewrite_section(docs, f"evaluate:{section}", results_doc.measured(
            docs_section(result, progress.text), results_doc.command_line()))
        progress(f"and to {docs}, section evaluate:{section}")
    return result


def docs_section(result: dict, printed: str) -> str:
    """The evaluation's section of docs/results.md: what it was run on, then the report as printed."""
    s = result["scale"]
    first, last = result["window"]
    return (f"{s['source']} data, {s['circuits']} circuits, {s['transformers']} transformers, "
            f"seed {s['seed']}; history {first}..{last}.\n\n```text\n{printed.strip()}\n```")


def stored_forecasts(db: Path) -> dict | None:
    """The day-ahead forecasts the graph stored, scored against what happened (None if none)."""
    from gridassets.domain import backtest, forecasting

    with warehouse.connect(db, read_only=True) as con:
        forecasts = reads.scored_forecasts(con, backtest.SCORED_COLUMNS)
        if forecasts is None or forecasts.empty:
            return None
        first = pd.Timestamp(forecasts["target_ts"].min()) - pd.Timedelta(days=8)
        load = reads.feeder_load_since(con, first)
    result = backtest.score(forecasts, load, forecasting.INTERVAL_LEVEL)
    per = result.per_circuit
    return {
        **result.overall,
        "origins": len(result.origins),
        "first_origin": str(result.origins[0]), "last_origin": str(result.origins[-1]),
        "circuits_beating_prev_day": int((per["mape"] < per["mape_prev_day"]).sum()),
        "circuits_beating_prev_week": int((per["mape"] < per["mape_prev_week"]).sum()),
        "coverage_range": [float(per["coverage"].min()), float(per["coverage"].max())],
    }


def format_stored(s: dict) -> str:
    return "\n".join([
        f"Stored day-ahead load forecasts ({s['origins']} origins {s['first_origin']}.."
        f"{s['last_origin']}, {s['circuits']} circuits, {s['hours']:,} target hours)",
        f"  MAPE {s['mape']:.2f}%  (naive previous day {s['mape_prev_day']:.2f}%, previous week "
        f"{s['mape_prev_week']:.2f}%)  RMSE {s['rmse']:.2f} MW",
        f"  circuits better than the previous day: {s['circuits_beating_prev_day']} of "
        f"{s['circuits']}, than the previous week: {s['circuits_beating_prev_week']}",
        f"  {s['interval_level']:.0%} interval coverage {s['coverage']:.1f}% "
        f"(circuits {s['coverage_range'][0]:.1f}-{s['coverage_range'][1]:.1f}%)",
    ])
