"""The definitions behind the daily features: windows, gust thresholds, IEEE C57.91 constants
and the warning-sign thresholds.

The features themselves are heavy data work, computed as DuckDB SQL over the warehouse by
`gridassets.storage.features` (and in plain pandas by `gridassets.bench_pandas`, the benchmark's
yardstick); both take these values from here, so a window or a threshold is named once.
"""

from __future__ import annotations

WINDOW_DAYS = 30
RECENT_DAYS = 7
GUST_THRESHOLDS_MPH = (40, 55)
# IEEE C57.91 top-oil rise: rise ~ ((K^2 R + 1) / (R + 1))^n; typical distribution units.
LOSS_RATIO_R = 5.0
OIL_EXPONENT_N = 0.8
# Thresholds that count a transformer as showing a warning sign (IEEE C57.104 flavour, per day).
H2_TREND_PPM_PER_DAY = 2.0
THERMAL_RATIO_WARNING = 1.15
