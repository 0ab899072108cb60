"""Results: records, the store, metrics, samples, tables and comparisons."""
