"""Devices: device files, their connection kinds, cores and energy figures."""
