"""Run detail: one cell's record — metrics, error, constraint table, measured energy with its
current trace, where the time goes, agreement with LiteRT per layer, provenance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bench.results.expected import verdict
from bench.results.formatting import duration, quantity
from leaderboard import charts, data
from leaderboard.pages import common
from leaderboard.plaintext import inline

st.title("Run detail")
df = common.load()
if not common.empty_store(df):
    runs = data.options(df, "run")
    run = st.selectbox("run", runs, index=len(runs) - 1, key="run")
    cells = df[df["run"] == run]["cell_id"].tolist()
    cell = st.selectbox("cell", cells, key="cell")
    record = data.get_record(common.results_dir(), run, cell) if cell else None
    if record is None:
        st.warning("No such record (the store changed?).")
        st.stop()
    st.subheader(inline(record.cell_id))
    outcome = verdict(record)
    st.markdown(f"**status** {inline(outcome.outcome)} · **runner** {inline(record.runner)} · "
                f"**artifact** {inline((record.artifact_sha256 or '–')[:16])}")
    if outcome.reason():  # misses the suite expects (or that passed though expected)
        st.info(inline(f"{outcome.outcome}: {outcome.reason()}"))
    if record.error:
        message = str(record.error.get("message"))
        # a runtime that cannot run the variant is not an error: it says why
        alert = st.info if outcome.outcome == "unsupported" else st.error
        alert(inline(f"{record.error.get('kind')}: {message}"))
        if "\n" in message.strip():  # the alert shows it on one line; here as written
            st.code(message, language=None)
    st.subheader("Metrics")
    common.show(pd.DataFrame([{"metric": k, "value": m.value, "unit": m.unit, "method": m.method}
                              for k, m in record.metrics.items()],
                             columns=["metric", "value", "unit", "method"]))
    st.subheader("Constraints")
    if record.constraints:
        common.show(pd.DataFrame([{"check": k, "metric": c.metric, "limit": c.limit,
                                   "value": c.value,
                                   "result": {True: "✓ pass", False: "✗ fail"}.get(c.passed,
                                                                                  "n/a")
                                   + (" (expected)" if k in outcome.why else "")}
                                  for k, c in record.constraints.items()]))
    else:
        st.caption("no constraints")
    energy = record.details.get("energy")
    if isinstance(energy, dict) and record.details.get("trace"):
        st.subheader("Energy")
        found = data.find_run(common.results_dir(), run)
        uj, mw = record.metrics.get("energy_uj"), record.metrics.get("power_mw")
        how = uj.method if uj else "–"
        st.markdown(inline(
            f"energy {uj.text() if uj else '–'} per inference · power "
            f"{mw.text() if mw else '–'} · method {how} · monitor {energy.get('monitor')} · "
            f"supply {energy.get('voltage_v')} V · {energy.get('rate_hz')} samples/s · "
            f"{energy.get('inferences')} inferences a window · dropped samples "
            f"{float(energy.get('dropped_share') or 0):.2%}"))
        if how == "emulated":
            st.caption("emulated: the virtual energy bench's power model, not a measurement")
        count = len(energy.get("windows") or [])
        window = st.selectbox("window", range(count), format_func=lambda i: f"window {i + 1}",
                              key="energy_window") if count else 0
        try:
            points, span = data.energy_trace(found, record.details["trace"], window or 0)
        except (ValueError, AttributeError) as e:
            st.warning(inline(f"cannot plot the current trace: {e}"))
        else:
            st.altair_chart(charts.trace_chart(points, span))
            st.caption(inline(
                f"the shaded span, between the last two timestamp edges (red), holds "
                f"{quantity(span['energy_uj'] / max(span['inferences'], 1), 'µJ')} per "
                f"inference over {duration(span['stop_s'] - span['start_s'], 's')}"))
    st.subheader("Where the time goes")
    try:
        layered = data.layer_rows(record.details)
    except ValueError as e:
        st.warning(inline(f"cannot plot the layers: {e}"))
        layered = None
    if layered is not None:
        rows, axis_title = layered
        st.altair_chart(charts.layers_chart(rows, axis_title))
        check = record.details.get("layers_check")
        try:
            state = "pass" if check["passed"] else "FAIL: the table leaves out part of it"
            summed = 100 * (1 + float(check["difference"]))
            tolerance = 100 * float(check["tolerance"])
        except (KeyError, TypeError, ValueError):
            st.caption("the layers' sum was not checked")
        else:
            st.caption(inline(f"{len(rows)} layers; they sum to {summed:.2f} % of the "
                              f"inference ({state}, tolerance {tolerance:g} %)"))
    else:
        st.caption(inline(f"no per-layer profile: "
                          f"{record.details.get('layers_reason') or 'this record keeps none'}"))
    st.subheader("Agreement with LiteRT, per layer")
    try:
        agreed = data.agreement_rows(record.details)
    except ValueError as e:
        st.caption(inline(f"no per-layer agreement: {e}"))
    else:
        if agreed is None:
            st.caption("no per-layer agreement: its runner compares no layers")
        else:
            table, said = agreed
            st.markdown(f"**verdict** {inline(said)}")
            common.show(table)
            st.caption("largest difference of each operator's output from LiteRT's (and from "
                        "LiteRT's built-in kernels, without XNNPACK), in quantized steps of "
                        "the tensor; * beyond the tolerance")
    st.subheader("Provenance")
    st.json(record.provenance, expanded=False)
    st.subheader("Details")
    st.json(record.details, expanded=False)
