"""Attached boards: the MLPerf Tiny serial protocol and a virtual board that speaks it."""
