"""Artifacts: caching, reading and exporting a cell's .tflite model."""
