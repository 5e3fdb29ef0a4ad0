"""Column contracts of the fleet registry and the raw daily tables.

One `TableSpec` per table says which columns exist, their types and plausible ranges, the form a
text value must have (printable; zones an NWS UGC code), which are required in landing files (and
the default of the optional ones), the key that must be unique, and the column whose timestamp must
fall inside the partition's day. The landing reader, the fleet simulator and the raw asset checks
all read these specs, so the three cannot drift apart.

All timestamps are naive UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# NWS UGC zone or county code: state, Z (zone) or C (county), three digits: MTZ309, WAC033.
# [0-9], not \d, which also matches other scripts' digits.
UGC_ZONE_PATTERN = r"[A-Z]{2}[CZ][0-9]{3}"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # one of: str, int, float, bool, date, timestamp
    required: bool = True  # must be present in a landing file
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    default: object = None  # used for an optional column absent from a landing file
    description: str = ""
    landing_name: str | None = None  # the column's name in landing files, when it differs
    pattern: str | None = None  # a text value must match this regular expression whole
    pattern_name: str = ""  # what the pattern stands for, in the words of an error message

    @property
    def source_name(self) -> str:
        return self.landing_name or self.name

    def text_problem(self, value: str) -> str | None:
        """Why `value` may not stand in this text column, or None when it may.

        Every text value must be printable: a newline, tab, NUL or other control character in an
        id breaks the CSV lists and logs it ends up in, and two ids that print alike would differ.
        """
        if not value.isprintable():
            return ("not printable text (it holds a control character such as a newline, tab or NUL, "
                    "or another character that does not print)")
        # fullmatch, not match with "$": "$" also matches before a trailing newline.
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            return f"not {self.pattern_name or 'of the required form'} (^{self.pattern}$)"
        return None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None = None  # must lie inside the partition's day (or its valid_days)
    entity_column: str | None = None  # one series per entity
    hourly: bool = False  # one row per entity per UTC hour: 24 per day
    description: str = ""
    extra_columns: tuple[str, ...] = field(default=())
    # A forecast: rows of partition D are valid on days D + first .. D + last - 1 (not inside D),
    # and are stored under `partition_column` (the issue day) instead of the time column's day.
    valid_days: tuple[int, int] | None = None
    partition_column: str | None = None

    @property
    def stored_by(self) -> str | None:
        """The column whose day is the row's partition."""
        return self.partition_column or self.time_column

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# The forecast zone a circuit, a weather row or a forecast is in (one definition for every table).
ZONE = Column("zone", "str", description="NWS forecast zone (UGC code such as MTZ309).",
              pattern=UGC_ZONE_PATTERN, pattern_name="an NWS UGC zone code such as MTZ309")

CIRCUITS = TableSpec(
    name="circuits",
    description="The distribution circuits (feeders) of the utility.",
    key=("circuit_id",),
    columns=(
        Column("circuit_id", "str", description="Circuit (feeder) identifier."),
        ZONE,
        Column("customers", "int", min=0, max=1_000_000, description="Customers served."),
        Column("critical_customers", "int", required=False, default=0, min=0, max=100_000,
               description="Hospitals, water plants, life-support customers."),
        Column("length_km", "float", required=False, default=15.0, min=0.01, max=2_000,
               description="Overhead line length exposed to weather and trees."),
        Column("tree_canopy_pct", "float", required=False, default=30.0, min=0, max=100,
               description="Share of the line under tree canopy."),
        Column("last_trim_date", "date", required=False, nullable=True,
               description="Last vegetation trim; absent means unknown (treated as 5 years)."),
        Column("latitude", "float", required=False, nullable=True, min=-90, max=90),
        Column("longitude", "float", required=False, nullable=True, min=-180, max=180),
        Column("capacity_mw", "float", required=False, nullable=True, min=0.001, max=1_000_000,
               description="Thermal capacity; absent means the loading component is not scored."),
    ),
)

TRANSFORMERS = TableSpec(
    name="transformers",
    description="The distribution transformers and the circuit each one is on.",
    key=("transformer_id",),
    columns=(
        Column("transformer_id", "str"),
        Column("circuit_id", "str"),
        Column("rating_kva", "float", min=1, max=1_000_000),
        Column("install_year", "int", min=1900, max=2100),
    ),
)

TRANSFORMER_TELEMETRY = TableSpec(
    name="transformer_telemetry",
    description="Hourly loading, temperatures and dissolved gases per transformer.",
    key=("transformer_id", "timestamp"),
    time_column="timestamp",
    entity_column="transformer_id",
    hourly=True,
    columns=(
        Column("transformer_id", "str"),
        Column("timestamp", "timestamp", description="Start of the UTC hour."),
        Column("load_pct", "float", min=0, max=400, description="Load as % of rating."),
        Column("oil_temp_c", "float", min=-60, max=200, description="Top-oil temperature."),
        Column("ambient_temp_c", "float", nullable=True, min=-60, max=60,
               description="Ambient temperature at the unit; may be empty where not measured "
                           "(features then use the zone's weather)."),
        Column("hot_spot_temp_c", "float", required=False, nullable=True, min=-60, max=300,
               description="Winding hot-spot temperature, where measured or estimated."),
        Column("h2_ppm", "float", required=False, nullable=True, min=0, max=100_000,
               description="Dissolved hydrogen, where an online gas monitor is fitted."),
        Column("c2h2_ppm", "float", required=False, nullable=True, min=0, max=100_000,
               description="Dissolved acetylene."),
        Column("c2h4_ppm", "float", required=False, nullable=True, min=0, max=100_000,
               description="Dissolved ethylene."),
    ),
)

FEEDER_LOAD = TableSpec(
    name="feeder_load",
    description="Hourly load per circuit, measured at the substation breaker.",
    key=("circuit_id", "timestamp"),
    time_column="timestamp",
    entity_column="circuit_id",
    hourly=True,
    columns=(
        Column("circuit_id", "str"),
        Column("timestamp", "timestamp", description="Start of the UTC hour."),
        Column("load_mw", "float", min=-1_000, max=1_000_000,
               description="Average load over the hour (negative under reverse flow)."),
    ),
)

WEATHER_OBSERVATIONS = TableSpec(
    name="weather_observations",
    description="Hourly weather per forecast zone.",
    key=("zone", "timestamp"),
    time_column="timestamp",
    entity_column="zone",
    hourly=True,
    columns=(
        ZONE,
        Column("timestamp", "timestamp", description="Start of the UTC hour."),
        Column("wind_speed_mph", "float", min=0, max=200),
        Column("wind_gust_mph", "float", min=0, max=250),
        Column("precip_mm", "float", min=0, max=500),
        Column("temp_c", "float", min=-60, max=60),
    ),
)

OUTAGE_EVENTS = TableSpec(
    name="outage_events",
    description="Sustained outages per circuit, by the day they started.",
    key=("circuit_id", "start_ts"),
    time_column="start_ts",
    entity_column="circuit_id",
    columns=(
        Column("circuit_id", "str"),
        Column("start_ts", "timestamp", landing_name="start"),
        Column("end_ts", "timestamp", nullable=True, landing_name="end",
               description="Restoration time; empty while the outage is ongoing."),
        Column("customers_affected", "int", min=0, max=10_000_000),
        Column("cause", "str", description="weather, vegetation, equipment, animal, overload, unknown."),
    ),
)

TRANSFORMER_FAILURES = TableSpec(
    name="transformer_failures",
    description="Transformer failures (the unit was taken out of service), by the day they happened.",
    key=("transformer_id", "failed_at"),
    time_column="failed_at",
    entity_column="transformer_id",
    columns=(
        Column("transformer_id", "str"),
        Column("failed_at", "timestamp"),
        Column("failure_mode", "str", required=False, default="unknown",
               description="thermal, dielectric, external, unknown."),
    ),
)

FORECAST_DAYS = 7

WEATHER_FORECASTS = TableSpec(
    name="weather_forecasts",
    description="The weather forecast issued at the end of each day, per zone and hour of the "
                "next seven days.",
    key=("issue_date", "zone", "valid_ts"),
    time_column="valid_ts",
    entity_column="zone",
    hourly=True,
    valid_days=(1, 1 + FORECAST_DAYS),
    partition_column="issue_date",
    columns=(
        Column("issue_date", "date", required=False,
               description="The day at whose end the forecast was issued (the partition); "
                           "taken from the file's name."),
        ZONE,
        Column("issued_at", "timestamp", description="When the forecast was made (UTC)."),
        Column("valid_ts", "timestamp", description="Start of the UTC hour forecast."),
        Column("lead_h", "int", min=1, max=24 * FORECAST_DAYS,
               description="Hours from the end of the issue day to the end of the hour forecast "
                           "(1 = the first hour of the next day)."),
        Column("temp_c", "float", min=-60, max=60, description="Air temperature, degC."),
        Column("wind_speed_mph", "float", min=0, max=200, description="Sustained wind, mph."),
        Column("wind_gust_mph", "float", min=0, max=250, description="Wind gust, mph."),
        Column("precip_mm", "float", min=0, max=500,
               description="Precipitation (water equivalent) in the hour, mm."),
        Column("precip_probability_pct", "float", required=False, nullable=True, min=0, max=100,
               description="Chance of measurable precipitation in the hour, where given."),
    ),
)

ZONES = TableSpec(
    name="zones",
    description="Landing only: the NWS gridpoint whose forecast stands for each zone.",
    key=("zone",),
    columns=(
        ZONE,
        Column("office", "str", pattern=r"[A-Z]{3}", pattern_name="a three-letter NWS office id",
               description="The forecast office (gridId), such as BMX."),
        Column("grid_x", "int", min=0, max=10_000),
        Column("grid_y", "int", min=0, max=10_000),
    ),
)

FLEET_TABLES = (CIRCUITS, TRANSFORMERS)
RAW_TABLES = (
    TRANSFORMER_TELEMETRY,
    FEEDER_LOAD,
    WEATHER_OBSERVATIONS,
    OUTAGE_EVENTS,
    TRANSFORMER_FAILURES,
    WEATHER_FORECASTS,
)
SPECS = {spec.name: spec for spec in (*FLEET_TABLES, *RAW_TABLES)}

OUTAGE_CAUSES = ("weather", "vegetation", "equipment", "animal", "overload", "unknown")
FAILURE_MODES = ("thermal", "dielectric", "external", "unknown")


# The output tables (contract: DESIGN.md, "Output tables"). Their specs describe the columns a
# user reads, in the UI's column schema; the assets' frames carry more columns than these.
_SCORE_UNIT = "expected customer-minutes of interruption over the next 7 days"
_DAY = Column("date", "date", description="The UTC day of the row (the partition).")
_RANK = Column("rank", "int", min=1, description="1 = the circuit to act on first.")
_CIRCUIT = Column("circuit_id", "str", description="Circuit (feeder) identifier.")
_CUSTOMERS = Column("customers", "int", min=0, description="Customers served by the circuit.")
_CRITICAL = Column("critical_customers", "int", min=0,
                   description="Hospitals, water plants, life-support customers on the circuit.")
_PRIORITY = Column("priority_score", "float", min=0,
                   description=f"The sum of the components: {_SCORE_UNIT}.")
_OUTAGE = Column("outage_score", "float", min=0,
                 description=f"Weather, tree and animal outages (outage model): {_SCORE_UNIT}.")
_TRANSFORMER = Column("transformer_score", "float", min=0,
                      description=f"Transformer failures (maintenance model) and other equipment "
                                  f"outages: {_SCORE_UNIT}.")
_VEGETATION = Column("vegetation_score", "float", min=0,
                     description=f"The part of the outage risk a trim today would avoid: "
                                 f"{_SCORE_UNIT}.")
_REASON = Column("reason", "str", description="Why the circuit is where it is, biggest driver "
                                              "first, in a crew lead's words.")

LOAD_FORECAST = TableSpec(
    name="load_forecast",
    description="Day-ahead hourly load per circuit with a prediction interval.",
    key=("circuit_id", "issue_date", "target_ts"),
    time_column="target_ts",
    columns=(
        _CIRCUIT,
        Column("issue_date", "date", description="The day at whose end the forecast was issued "
                                                 "(the partition), from load up to its 23:00."),
        Column("target_ts", "timestamp", description="Start of the UTC hour forecast."),
        Column("horizon_h", "int", min=1, description="Hours from the issue to the end of the "
                                                      "hour forecast."),
        Column("load_mw", "float", description="Forecast average load over the hour, MW."),
        Column("lower_mw", "float", description="Lower end of the prediction interval, MW."),
        Column("upper_mw", "float", description="Upper end of the prediction interval, MW."),
        Column("interval_level", "float", min=0, max=1,
               description="Nominal coverage of the interval (0.9: 90 % of hours inside)."),
        Column("method", "str", description="The model or fallback that made the row."),
        Column("inputs", "str", description="What the row was made from: load, or load and "
                                            "temperature."),
        Column("model", "str", description="The model's order and version."),
        Column("params", "str", description="The fitted parameters (JSON)."),
        Column("fitted_on", "date", nullable=True, description="The day the model was last "
                                                               "refitted."),
        Column("substituted", "bool", description="True where a fallback stood in for the model "
                                                  "(the note says why)."),
        Column("note", "str", description="Why a fallback was used; empty otherwise."),
        Column("temperature_source", "str", description="Where the hour's temperature came from: "
                                                        "the weather forecast, the observation "
                                                        "24 h before, or none."),
    ),
)

PRIORITIZED_CIRCUITS = TableSpec(
    name="prioritized_circuits",
    description="The day's ranked list of circuits by expected customer-minutes at risk.",
    key=("circuit_id", "date"),
    time_column="date",
    columns=(
        _DAY, _RANK, _CIRCUIT, _PRIORITY, _OUTAGE, _TRANSFORMER, _VEGETATION,
        Column("loading_score", "float", min=0,
               description=f"Overload on the forecast peak (load forecast against capacity): "
                           f"{_SCORE_UNIT}."),
        Column("expected_customer_minutes_7d", "float", min=0,
               description="The priority score, under the name of its unit."),
        _CUSTOMERS, _CRITICAL, _REASON,
        Column("outage_model_version", "str", description="The outage model version behind "
                                                          "outage_score."),
        Column("maintenance_model_version", "str",
               description="The maintenance model version behind transformer_score."),
        Column("outage_calibration", "float", min=0,
               description="Factor applied to the outage and vegetation components: what past "
                           "weeks' outages cost over what was predicted for them."),
        Column("outage_calibration_days", "int", min=0,
               description="Past days behind that factor (1.0 when too few)."),
        ZONE,
        Column("expected_outages_7d", "float", min=0,
               description="Expected weather, tree and animal outages over the next 7 days."),
        Column("weather_source", "str", description="The weather behind the outage component: "
                                                    "the zone's forecast, or climatology."),
        Column("peak_gust_mph", "float", min=0, description="The zone's peak gust on the day, "
                                                            "mph."),
        Column("forecast_peak_gust_mph", "float", min=0, nullable=True,
               description="The strongest gust the week's forecast holds for the zone, mph."),
        Column("forecast_peak_gust_ts", "timestamp", nullable=True,
               description="When that gust is forecast (UTC hour)."),
        Column("forecast_precip_mm_7d", "float", min=0, nullable=True,
               description="Rain the week's forecast holds for the zone, mm."),
        Column("years_since_trim", "float", min=0, nullable=True,
               description="Years since the line's last vegetation trim."),
        Column("expected_failures_7d", "float", min=0,
               description="Expected transformer failures on the circuit over the next 7 days."),
        Column("transformer_asset_risk", "float", min=0,
               description="The transformers' part of transformer_score: failure probability x "
                           "customers served x replacement time, customer-minutes."),
        Column("transformers_at_risk", "int", min=0,
               description="Transformers above a 5 % 30-day failure probability."),
        Column("worst_transformer", "str", description="The circuit's transformer most likely "
                                                       "to fail within 30 days."),
        Column("worst_transformer_p30", "float", min=0, max=1,
               description="Its 30-day failure probability."),
        Column("worst_transformer_signals", "str",
               description="What its telemetry shows (gases, temperatures, loading)."),
        Column("equipment_outages_7d", "float", min=0,
               description="Expected outages of other equipment over the next 7 days (the "
                           "circuit's pooled past rate)."),
        Column("other_equipment_customer_minutes_7d", "float", min=0,
               description="Their expected customer-minutes: the rest of transformer_score."),
        Column("forecast_peak_mw", "float", nullable=True,
               description="Tomorrow's peak in the day-ahead load forecast, MW."),
        Column("capacity_mw", "float", nullable=True, description="The circuit's thermal "
                                                                  "capacity, MW."),
        Column("p_overload_day", "float", min=0, max=1, nullable=True,
               description="Probability that tomorrow's peak exceeds the capacity."),
    ),
)

STORM_PRIORITY_CIRCUITS = TableSpec(
    name="storm_priority_circuits",
    description="A storm's crew-staging list: the affected circuits, ranked.",
    key=("storm_id", "circuit_id"),
    columns=(
        Column("storm_id", "str", description="The storm (the alert's event): the partition."),
        _RANK, _CIRCUIT,
        Column("priority_score", "float", min=0,
               description="Expected customer-minutes of interruption over the storm window."),
        _CUSTOMERS, _REASON,
        Column("status", "str", description="active, updated or cancelled."),
        ZONE, _CRITICAL,
        Column("outage_score", "float", min=0, description="Storm outages (outage model over "
                                                           "the alert's conditions), "
                                                           "customer-minutes."),
        Column("transformer_score", "float", min=0,
               description="Transformer failures over the storm window, customer-minutes."),
        Column("vegetation_score", "float", min=0,
               description="The part of the outage risk trees make, customer-minutes."),
        Column("expected_outages", "float", min=0,
               description="Expected sustained outages on the circuit during the storm."),
        Column("max_wind_gust_mph", "float", min=0, description="The strongest gust the "
                                                                "circuit's zone expects, mph."),
        Column("event", "str", description="The alert's event (High Wind Warning, ...)."),
        Column("state_date", "date", description="The day of the circuit state it was scored "
                                                  "with."),
        Column("state_age_days", "int", min=0,
               description="Days from that state to the storm's latest alert."),
        Column("conditions_source", "str", description="Which conditions were used: the "
                                                       "alert's, the weather forecast's."),
        Column("window_start", "timestamp", nullable=True,
               description="The start of the alert window the circuit was scored over (the "
                           "alert's onset, UTC); empty for a cancelled storm."),
        Column("window_end", "timestamp", nullable=True,
               description="Its end: the later of the alert's ends and expires (UTC)."),
        Column("latitude", "float", nullable=True, min=-90, max=90,
               description="The circuit's latitude (WGS 84) from the registry; empty where it "
                           "has none."),
        Column("longitude", "float", nullable=True, min=-180, max=180,
               description="The circuit's longitude (WGS 84) from the registry."),
    ),
)

OUTPUT_TABLES = (LOAD_FORECAST, PRIORITIZED_CIRCUITS, STORM_PRIORITY_CIRCUITS)

# A column's description by name, for any derived table that has it (the UI's column schema):
# the output tables' first, then the registry's. (Not the raw tables': a derived load_mw is a
# forecast, not a measurement.)
COLUMN_DESCRIPTIONS: dict[str, str] = {}
for _spec in (*OUTPUT_TABLES, *FLEET_TABLES):
    for _column in _spec.columns:
        if _column.description:
            COLUMN_DESCRIPTIONS.setdefault(_column.name, _column.description)
