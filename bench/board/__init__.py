"""Attached boards: the MLPerf Tiny serial protocol, the link that speaks it, the reference models."""
