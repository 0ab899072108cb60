"""Analytic estimates for boards you do not have: operator analysis, cost model, calibration.

* :mod:`bench.estimate.analysis` — per-operator table of a .tflite (MACs, params, bytes)
* :mod:`bench.estimate.model` — latency, energy, flash and RAM on a device
* :mod:`bench.estimate.calibrate` — the fit to published MLPerf Tiny results, and its error
"""
