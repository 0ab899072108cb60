"""Running a suite: the session, building artifacts, the work on one cell, executors, replays."""
