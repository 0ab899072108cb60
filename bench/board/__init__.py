"""Attached boards: the MLPerf Tiny serial protocol, the link speaking it, reference models."""
