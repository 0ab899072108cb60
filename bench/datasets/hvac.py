"""``hvac_building``: indoor-temperature forecasting on a simulated office building.

Recipe (seeded): ``days`` days (default 30 → 43,200 samples) at 1-minute sampling, day 0 a
Monday, after a one-day burn-in that is discarded (it only provides history for the lags).

* outdoor temperature: daily cycle 8 ± 6 °C (coldest 03:00), a slow AR(1) weather drift
  (σ ≈ 2 °C, hours-long memory) and 0.1 °C sensor noise;
* occupancy: people present, Poisson around a weekday office schedule (08–17 h ≈ 20 people,
  lunch dip, ramps 07–08 and 17–19 h), nobody at night or at weekends;
* HVAC state: +1 heating, -1 cooling, 0 off; a thermostat with ±0.5 °C hysteresis around
  21 °C (heat) / 24 °C (cool) on workdays 07–19 h and 16 / 28 °C otherwise;
* indoor temperature: first-order thermal model, per minute
  ``T += (T_out - T) / 360 + 0.08·hvac + 0.001·occupancy + 0.02·sun + ε`` (ε ~ N(0, 0.01)),
  measured with 0.05 °C sensor noise.

Model input: 60 consecutive minutes × the 14 :data:`FEATURES`. Target: the measured indoor
temperature 60 minutes after the window's last step, in °C. Splits are chronological by the
target's minute: days [0, 0.7·days) train, [0.7, 0.85) validation, [0.85, 1) test (days 1–21,
22–25.5, 25.5–30 for 30 days); a window belongs to a split only if its first input step and its
target both lie inside it, so no window crosses a boundary. Features are standardised with
statistics of the training period only; the target stays in °C.
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field

from bench.datasets.base import Dataset, DatasetPlugin
from bench.errors import Strict

log = logging.getLogger(__name__)

MINUTES_PER_DAY = 1440
WINDOW = 60  # input steps (minutes)
HORIZON = 60  # minutes from the window's last step to the target
SPLIT_BOUNDS = (0.70, 0.85)  # train/validation and validation/test boundaries, share of days

#: The 14 engineered features, in column order.
FEATURES = (
    "indoor_temp",            # °C, measured
    "outdoor_temp",           # °C, measured
    "occupancy",              # people present
    "hvac_state",             # +1 heating, -1 cooling, 0 off
    "indoor_temp_lag_30m",    # indoor_temp 30 minutes earlier
    "indoor_temp_lag_60m",    # indoor_temp 60 minutes earlier
    "outdoor_temp_lag_30m",   # outdoor_temp 30 minutes earlier
    "outdoor_temp_lag_60m",   # outdoor_temp 60 minutes earlier
    "indoor_delta_60m",       # indoor_temp minus its 60-minute lag
    "outdoor_delta_60m",      # outdoor_temp minus its 60-minute lag
    "hvac_duty_60m",          # mean hvac_state over the last 60 minutes
    "hour_sin",               # sin(2π · hour of day / 24)
    "hour_cos",               # cos(2π · hour of day / 24)
    "workday",                # 1 Monday–Friday, 0 at weekends
)


class HvacParams(Strict):
    """Parameters of ``hvac_building``."""

    days: int = Field(30, ge=2, le=366)
    #: Minutes between the starts of consecutive windows; raise it to train faster.
    window_stride: int = Field(1, ge=1, le=1440)


def simulate(days: int, rng: np.random.Generator, burn_in: int = MINUTES_PER_DAY) -> dict:
    """Raw sensor series of ``burn_in + days·1440`` minutes; minute ``burn_in`` is Monday 00:00."""
    n = burn_in + days * MINUTES_PER_DAY
    minute = np.arange(n) - burn_in
    hour = (minute % MINUTES_PER_DAY) / 60.0
    workday = ((minute // MINUTES_PER_DAY) % 7) < 5

    drift = np.empty(n)
    phi, innov = 0.999, 2.0 * np.sqrt(1 - 0.999**2)
    shocks = rng.normal(0.0, innov, n)
    drift[0] = rng.normal(0.0, 2.0)
    for t in range(1, n):
        drift[t] = phi * drift[t - 1] + shocks[t]
    outdoor_true = 8.0 + 6.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0) + drift
    outdoor = outdoor_true + rng.normal(0.0, 0.1, n)

    rate = np.select(
        [(hour >= 7) & (hour < 8), (hour >= 8) & (hour < 12), (hour >= 12) & (hour < 13),
         (hour >= 13) & (hour < 17), (hour >= 17) & (hour < 19)],
        [5.0, 20.0, 12.0, 20.0, 6.0], default=0.0,
    )
    occupancy = rng.poisson(np.where(workday, rate, 0.0)).astype(np.float64)
    sun = np.clip(np.sin(2 * np.pi * (hour - 6.0) / 24.0), 0.0, None)

    occupied = workday & (hour >= 7) & (hour < 19)
    heat_sp = np.where(occupied, 21.0, 16.0)
    cool_sp = np.where(occupied, 24.0, 28.0)
    drive = 0.001 * occupancy + 0.02 * sun + rng.normal(0.0, 0.01, n)

    indoor_true = np.empty(n)
    hvac = np.zeros(n)
    temp, state = 19.0, 0.0
    for t in range(n):  # sequential by nature: the thermostat has memory (hysteresis)
        if temp < heat_sp[t] - 0.5:
            state = 1.0
        elif temp > cool_sp[t] + 0.5:
            state = -1.0
        elif (state > 0 and temp > heat_sp[t] + 0.5) or (state < 0 and temp < cool_sp[t] - 0.5):
            state = 0.0
        hvac[t] = state
        indoor_true[t] = temp
        temp += (outdoor_true[t] - temp) / 360.0 + 0.08 * state + drive[t]
    indoor = indoor_true + rng.normal(0.0, 0.05, n)
    return {"indoor": indoor, "outdoor": outdoor, "occupancy": occupancy, "hvac": hvac,
            "hour": hour, "workday": workday.astype(np.float64), "burn_in": burn_in}


def engineer(raw: dict) -> np.ndarray:
    """The ``(days·1440, 14)`` float64 feature matrix (burn-in rows dropped after lagging)."""
    b = raw["burn_in"]
    if b < HORIZON:
        raise ValueError(f"burn-in of {b} minutes is shorter than the longest lag ({HORIZON})")
    indoor, outdoor, hvac = raw["indoor"], raw["outdoor"], raw["hvac"]

    def lag(a: np.ndarray, k: int) -> np.ndarray:
        return a[b - k: len(a) - k]

    csum = np.concatenate([[0.0], np.cumsum(hvac)])
    duty = (csum[b + 1:] - csum[b + 1 - 60: len(csum) - 60]) / 60.0
    cols = [
        indoor[b:], outdoor[b:], raw["occupancy"][b:], hvac[b:],
        lag(indoor, 30), lag(indoor, 60), lag(outdoor, 30), lag(outdoor, 60),
        indoor[b:] - lag(indoor, 60), outdoor[b:] - lag(outdoor, 60), duty,
        np.sin(2 * np.pi * raw["hour"][b:] / 24), np.cos(2 * np.pi * raw["hour"][b:] / 24),
        raw["workday"][b:],
    ]
    return np.stack(cols, axis=1)


def split_bounds(days: int) -> tuple[int, int, int, int]:
    """Minute boundaries ``(0, train_end, validation_end, end)`` of the chronological split."""
    n = days * MINUTES_PER_DAY
    return 0, round(SPLIT_BOUNDS[0] * n), round(SPLIT_BOUNDS[1] * n), n


def window_starts(start: int, end: int, stride: int) -> np.ndarray:
    """First-step minutes of windows whose inputs and target lie inside ``[start, end)``."""
    last = end - 1 - (WINDOW - 1 + HORIZON)  # the last start whose target is end - 1
    return np.arange(start, last + 1, stride)


def load(params: HvacParams, seed: int) -> Dataset:
    """Simulate the building and cut it into windows."""
    rng = np.random.default_rng(seed)
    raw = simulate(params.days, rng)
    feats = engineer(raw)
    target = raw["indoor"][raw["burn_in"]:]
    bounds = split_bounds(params.days)

    mean = feats[: bounds[1]].mean(axis=0)
    std = feats[: bounds[1]].std(axis=0)
    scaled = ((feats - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    views = np.lib.stride_tricks.sliding_window_view(scaled, WINDOW, axis=0)  # (n', 14, 60)

    arrays: list[tuple[np.ndarray, np.ndarray]] = []
    starts_by_split = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        starts = window_starts(lo, hi, params.window_stride)
        if len(starts) == 0:
            raise ValueError(f"hvac_building: days={params.days} leaves a split too short for "
                             f"a {WINDOW}-minute window and a {HORIZON}-minute horizon")
        x = np.ascontiguousarray(views[starts].transpose(0, 2, 1))  # (n, 60, 14), copies
        y = target[starts + WINDOW - 1 + HORIZON].astype(np.float32)
        arrays.append((x, y))
        starts_by_split.append(starts)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = arrays
    log.debug("hvac_building: %d/%d/%d windows (stride %d)",
              len(y_tr), len(y_va), len(y_te), params.window_stride)
    return Dataset(
        task="regression",
        x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va, x_test=x_te, y_test=y_te,
        info={
            "features": list(FEATURES),
            "window": WINDOW,
            "horizon_minutes": HORIZON,
            "sampling_minutes": 1,
            "days": params.days,
            "window_stride": params.window_stride,
            "target": f"indoor_temp {HORIZON} min after the window's last step (°C)",
            "split_minutes": {"train": [bounds[0], bounds[1]],
                              "validation": [bounds[1], bounds[2]],
                              "test": [bounds[2], bounds[3]]},
            "split": "chronological by target minute, 70/15/15; windows never cross a boundary; "
                     "features standardised on the training period; target in °C",
            "source": "simulated office building (first-order thermal model, thermostat with "
                      "hysteresis)",
        },
    )


HVAC_BUILDING = DatasetPlugin(
    name="hvac_building",
    task="regression",
    load=load,
    params=HvacParams,
    description="Simulated building, 60 min × 14 features → indoor °C in 60 min (chronological).",
)
