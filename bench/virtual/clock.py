"""The virtual board's microsecond clocks: the host's, or a simulated device's.

The simulated clock runs at wall-clock rate while the board waits for commands and by the
device's estimated latency while it computes; a computation returns no sooner than that latency
in wall time. So the simulated time between any two timestamps the board reports is never longer
than the wall time between them, and host runners that also check elapsed wall time (the MLPerf
Tiny runner wants a performance loop to last at least 10 s) agree with the board.
"""

from __future__ import annotations

import time


class HostClock:
    """Microseconds since boot on the host's monotonic clock."""

    def __init__(self) -> None:
        self._t0_ns = time.perf_counter_ns()

    def now_us(self) -> int:
        return (time.perf_counter_ns() - self._t0_ns) // 1000

    def elapse(self, us: float) -> int:
        """The time after a computation: the host's own time already passed."""
        return self.now_us()


class SimulatedClock:
    """Microseconds since boot of a simulated device (whole microseconds, never ahead of the
    wall time since boot)."""

    def __init__(self) -> None:
        self._us = 0
        self._at_ns = time.perf_counter_ns()  # the wall instant that ``_us`` stands for

    def now_us(self) -> int:
        """The current time: the last reading plus the whole microseconds of wall time since."""
        idle_us = (time.perf_counter_ns() - self._at_ns) // 1000
        self._us += idle_us
        self._at_ns += idle_us * 1000
        return self._us

    def elapse(self, us: float) -> int:
        """Advance by ``us`` (rounded to whole microseconds) from the last reading, once as much
        wall time has passed since it; the time after. Wall time beyond that (a slow host, a
        late wake-up) is not counted: the device was that fast."""
        step = max(round(us), 0)
        deadline = self._at_ns + step * 1000
        while (left := deadline - time.perf_counter_ns()) > 0:
            time.sleep(left / 1e9)
        self._us += step
        self._at_ns = time.perf_counter_ns()
        return self._us


Clock = HostClock | SimulatedClock
