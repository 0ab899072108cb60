"""Runners: execute a .tflite artifact on one kind of device and measure it."""
