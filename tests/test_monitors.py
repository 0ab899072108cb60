"""Power monitors: the LPM01A protocol, edgebench's LPM01A client against the virtual LPM01A on a
real pseudo-terminal (happy path and every fault), window integration, the Joulescope's
missing-package error and the registry axis."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from pydantic import ValidationError

from bench import registry
from bench.monitors import lpm01a
from bench.monitors.base import (
    MonitorError,
    Trace,
    WindowError,
    open_monitor,
    traces_from_json,
    traces_to_json,
    window_energy,
)
from bench.virtual.monitor import PowerTimeline, VirtualLPM01A

IDLE_A, ACTIVE_A = 0.001, 0.012


def test_sample_values_round_trip_with_four_significant_digits() -> None:
    assert lpm01a.parse_value("6409-07") == pytest.approx(640.9e-6)
    assert lpm01a.format_value(640.9e-6) == "6409-07"
    for x in np.geomspace(1e-12, 10, 200):
        assert lpm01a.parse_value(lpm01a.format_value(float(x))) == pytest.approx(x, rel=6e-4)
    assert lpm01a.parse_samples("1234-05") == [pytest.approx(1.234e-2)]
    cut = lpm01a.parse_samples("34-051234-05")  # a line whose start was lost
    assert math.isnan(cut[0]) and cut[1] == pytest.approx(1.234e-2)
    assert lpm01a.parse_samples("TimeStamp: 001s 000ms, buff 00%") is None
    assert lpm01a.parse_timestamp("TimeStamp: 012s 345ms, buff 00%") == pytest.approx(12.345)
    assert lpm01a.parse_event("event 3 ris") == 3 and lpm01a.parse_event("event x") is None
    assert lpm01a.freq_argument(1000) == "1k" and lpm01a.volt_argument(1.8) == "1800m"


def test_options_are_checked() -> None:
    lpm01a.LPM01AOptions(port="/dev/null")
    for bad in ({"port": "/dev/null", "rate_hz": 10_000}, {"port": "/dev/null", "voltage_v": 5},
                {"usb": "nope"}, {}, {"port": "/dev/null", "max_dropped": 1.5},
                {"port": "/dev/null", "rate": 5}):
        with pytest.raises(ValidationError):
            lpm01a.LPM01AOptions.model_validate(bad)


def test_the_monitor_axis_is_a_registry() -> None:
    assert {"lpm01a", "joulescope", "virtual"} <= set(registry.monitors.names())
    assert registry.monitors.get("lpm01a").options is lpm01a.LPM01AOptions


@pytest.fixture
def instrument(request: pytest.FixtureRequest) -> Iterator[tuple[VirtualLPM01A, PowerTimeline]]:
    """A virtual LPM01A on a pty, served by a thread; ``request.param`` is its fault."""
    timeline = PowerTimeline(IDLE_A)
    inst = VirtualLPM01A(timeline, fault=getattr(request, "param", None))
    done = threading.Event()
    server = threading.Thread(target=inst.serve, args=(done.is_set,), daemon=True)
    server.start()
    yield inst, timeline
    done.set()
    server.join(2)
    inst.close()


def client(inst: VirtualLPM01A, **options: object) -> lpm01a.LPM01A:
    opts = lpm01a.LPM01AOptions.model_validate({"port": inst.address, "voltage_v": 1.8,
                                                "timeout_s": 1.0, **options})
    return lpm01a.LPM01A(opts, virtual=True)


def busy_window(timeline: PowerTimeline, seconds: float) -> tuple[float, float]:
    """Two edges ``seconds`` apart with the active current between; (start, stop)."""
    t0 = time.monotonic()
    timeline.edge(t0)
    timeline.busy(t0, t0 + seconds, ACTIVE_A)
    time.sleep(seconds)
    t1 = time.monotonic()
    timeline.edge(t1)
    time.sleep(0.05)
    return t0, t1


def window_error(inst: VirtualLPM01A, timeline: PowerTimeline, seconds: float) -> str:
    """The error a busy window of ``seconds`` ends with (it must end with one)."""
    with client(inst) as mon:
        mon.start()
        mon.mark()
        busy_window(timeline, seconds)
        with pytest.raises(MonitorError) as err:
            mon.collect()
    return str(err.value)


def test_a_window_integrates_the_streamed_energy(instrument) -> None:
    inst, timeline = instrument
    with client(inst) as mon:
        mon.start()
        assert mon.virtual and mon.method == "emulated"
        time.sleep(0.2)
        mon.mark()
        t0, t1 = busy_window(timeline, 0.6)
        trace = mon.collect()
    assert len(trace.events) == 2 and trace.dropped == 0 and trace.voltage_v == 1.8
    w = window_energy(trace, 10)
    expected = ACTIVE_A * 1.8 * (t1 - t0)
    assert w.energy_j == pytest.approx(expected, rel=0.02)
    assert w.duration_s == pytest.approx(t1 - t0, abs=0.003)
    assert w.energy_uj_per_inference == pytest.approx(w.energy_j * 1e5)
    # the reported figure is the trace's own integral over the window
    span = trace.current_a[w.start:w.stop] * trace.voltage_v / trace.rate_hz
    assert w.energy_j == pytest.approx(span.sum(), rel=1e-9)
    idle = trace.current_a[:w.start - 5]
    assert np.median(idle) == pytest.approx(IDLE_A, rel=0.05)
    saved = traces_from_json(traces_to_json([trace], [w], "virtual", "emulated"))
    assert np.allclose(saved[0]["current_a"], trace.current_a, rtol=1e-6)
    assert saved[0]["events"] == trace.events


def test_open_monitor_reads_a_device_files_mapping(instrument) -> None:
    inst, _ = instrument
    mon = open_monitor({"kind": "virtual", "port": inst.address, "timeout_s": 1.0})
    try:
        mon.start()
    finally:
        mon.close()
    with pytest.raises(MonitorError, match="not an LPM01A"):
        real = open_monitor({"kind": "lpm01a", "port": inst.address, "timeout_s": 1.0})
        try:
            real.start()
        finally:
            real.close()


def test_an_absent_monitor_names_its_port(tmp_path) -> None:
    missing = str(tmp_path / "ttyACM9")
    with pytest.raises(MonitorError) as err:
        lpm01a.LPM01A(lpm01a.LPM01AOptions(port=missing))
    assert missing in str(err.value) and "cannot open" in str(err.value)


@pytest.mark.parametrize("instrument", ["garbage"], indirect=True)
def test_a_monitor_answering_garbage_fails_with_what_came(instrument) -> None:
    inst, _ = instrument
    with client(inst) as mon, pytest.raises(MonitorError) as err:
        mon.start()
    text = str(err.value)
    assert inst.address in text and "expected ack htc" in text and "received" in text
    assert "unreadable" in text


@pytest.mark.parametrize("instrument", ["silence"], indirect=True)
def test_a_silent_monitor_fails_after_its_timeout(instrument) -> None:
    inst, _ = instrument
    with client(inst, timeout_s=0.5) as mon, pytest.raises(MonitorError) as err:
        mon.start()
    assert "no answer to `htc` within 0.5 s" in str(err.value)
    assert "received nothing" in str(err.value)


@pytest.mark.parametrize("instrument", ["drop"], indirect=True)
def test_dropped_samples_beyond_the_threshold_fail_the_window(instrument) -> None:
    inst, timeline = instrument
    error = window_error(inst, timeline, 1.2)
    assert "dropped samples" in error and "at most 0.10%" in error
    with client(inst, max_dropped=0.2) as mon:  # a looser threshold takes the same stream
        mon.start()
        mon.mark()
        t0, t1 = busy_window(timeline, 1.2)
        trace = mon.collect()
        assert 0 < trace.dropped_share < 0.1
        w = window_energy(trace, 1)  # dropped samples count as the window's mean
        assert w.energy_j == pytest.approx(ACTIVE_A * 1.8 * (t1 - t0), rel=0.05)


@pytest.mark.parametrize("instrument", ["stop"], indirect=True)
def test_a_monitor_stopping_mid_window_fails_it(instrument) -> None:
    inst, timeline = instrument
    error = window_error(inst, timeline, 1.0)
    assert "stopped streaming mid-window" in error and inst.address in error


def test_a_window_with_too_few_timestamps_says_so(instrument) -> None:
    inst, timeline = instrument
    with client(inst) as mon:
        mon.start()
        mon.mark()
        timeline.edge()
        time.sleep(0.2)
        trace = mon.collect()
    with pytest.raises(WindowError, match="holds 1 timestamp edge"):
        window_energy(trace, 5)
    with pytest.raises(WindowError, match="holds 0"):
        window_energy(Trace(1000.0, 3.3, np.zeros(10)), 5)


def test_an_edge_recorded_after_the_stream_passed_its_time_still_comes_out(instrument) -> None:
    """The board's thread may be held up (another thread holds the GIL, a loaded machine)
    between reading the clock and recording its edge; the stream has then already sent that
    moment's sample. The edge must come out late, not be lost (MLPerf Tiny's runner needs both
    of a window's edges)."""
    inst, timeline = instrument
    with client(inst) as mon:
        mon.start()
        mon.mark()
        late = time.monotonic()
        time.sleep(0.2)  # the stream sends this moment's samples meanwhile
        timeline.edge(late)
        time.sleep(0.2)
        timeline.edge()
        time.sleep(0.2)
        trace = mon.collect()
    assert len(trace.events) == 2
    assert trace.events[1] - trace.events[0] == pytest.approx(0.2 * trace.rate_hz, abs=60)


def test_joulescope_without_its_package_says_how_to_install() -> None:
    try:  # the package is an optional extra
        import joulescope  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the joulescope package is installed")
    with pytest.raises(MonitorError, match=r"pip install 'edgebench\[joulescope\]'"):
        open_monitor({"kind": "joulescope"})


def test_a_device_files_energy_block_is_checked_when_read(tmp_path) -> None:
    import yaml

    from bench.devices.device import load_device
    from bench.errors import SpecError

    base = {"id": "bench", "core": "cortex-m4f", "clock_mhz": 80, "runtime": "tflm",
            "memory": {"flash_kb": 1024, "ram_kb": 256},
            "connection": {"kind": "serial", "port": "/dev/ttyACM0"},
            "energy": {"monitor": {"kind": "lpm01a", "port": "/dev/ttyACM1",
                                   "voltage_v": 1.8}}}
    path = tmp_path / "bench.yaml"

    def problems(**change: object) -> str:
        path.write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(SpecError) as err:
            load_device(path)
        return str(err.value)

    path.write_text(yaml.safe_dump(base))
    assert load_device(path).energy.monitor["voltage_v"] == 1.8
    assert "unknown power monitor 'lpm01b'; did you mean 'lpm01a'?" in problems(
        energy={"monitor": {"kind": "lpm01b", "port": "x"}})
    text = problems(energy={"monitor": {"kind": "lpm01a", "port": "x", "rate_hz": 7,
                                        "voltag_v": 2}})
    assert "energy.monitor.rate_hz" in text and "energy.monitor.voltag_v" in text
    assert "connection.kind: serial" in problems(connection={"kind": "estimate"})
    assert "energy.monitor: Field required" in problems(energy={"boot_s": 1})
    assert "energy.boot_s" in problems(energy={**base["energy"], "boot_s": -1})
    assert "energy.io" in problems(energy={**base["energy"], "io": 1})


def test_joulescope_raw_samples_fold_into_energy_periods_and_edges() -> None:
    from bench.monitors.joulescope import fold

    rng = np.random.default_rng(0)
    current = rng.uniform(0.001, 0.01, 10_000)
    voltage = np.full(10_000, 1.8)
    gpi = np.ones(10_000, bool)
    gpi[2_500:2_600] = False  # a timestamp pulse: low, then a rising edge at raw sample 2600
    gpi[7_000:7_100] = False  # and at 7100
    energy, edges, level = [], [], None
    carry = np.zeros(0)
    for a in range(0, 10_000, 777):  # arbitrary transfers
        b = min(a + 777, 10_000)
        sums, found, carry, level = fold(carry, level, current[a:b], voltage[a:b], gpi[a:b],
                                         100, 1e6)
        edges += [len(energy) + e for e in found]
        energy += sums.tolist()
    assert len(energy) == 100 and not len(carry)
    assert edges == [26, 71]  # the periods holding raw samples 2600 and 7100
    expected = (current * voltage / 1e6).reshape(-1, 100).sum(axis=1)
    assert np.allclose(energy, expected, rtol=1e-12)
