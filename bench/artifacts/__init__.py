"""Artifacts: building, caching, exporting and reading a cell's .tflite model."""
