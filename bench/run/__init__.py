"""Running a suite: session, the work on one cell, executors, workers, the run lock."""
