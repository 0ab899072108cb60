"""Analytic estimates for boards you do not have: operator analysis, cost model, calibration.

* :mod:`bench.estimate.analysis` — per-operator table of a .tflite (MACs, params, bytes)
* :mod:`bench.estimate.model` — latency and energy with 80 % intervals, flash and RAM
* :mod:`bench.estimate.design`, :mod:`bench.estimate.fit` — the cost model's terms, the fit
  and its covariance; :mod:`bench.devices.releases` — runtime releases
* :mod:`bench.estimate.data`, :mod:`bench.estimate.records` — calibration rows from published
  results and from the user's own records
* :mod:`bench.estimate.crossval`, :mod:`bench.estimate.evaluate` — nested cross-validation,
  interval calibration, the error and coverage tables
* :mod:`bench.estimate.calibrate`, :mod:`bench.estimate.coefficients` — the coefficient table
"""
