"""Power monitors for MLPerf Tiny's energy mode: a plugin axis (``edgebench.monitors``).

A monitor supplies the DUT, samples its current and marks the DUT's GPIO timestamp edges in
its stream; :mod:`bench.monitors.base` turns one window of that stream into energy.
"""
