"""Compression steps. A variant is a list of steps applied in order."""
