"""Stand-ins for hardware: a virtual board that speaks the MLPerf Tiny protocol on a pty."""
