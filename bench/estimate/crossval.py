"""Cross-validation of the fit procedure, nested so the reported error is not optimistic.

:func:`procedure` is what ``edgebench calibrate`` does with a data set: for each candidate
:class:`Structure`, cross-validate inside the data (systems held out in ``INNER_FOLDS``
folds, and each model family held out in turn), keep the structure with the smallest mean
absolute log error, take the 10th and 90th percentiles of its standardised held-out residuals
as the 80 % interval (each held-out system, or model family, weighing the same, however many
rows it has; per source of doubt where there are enough: :class:`Interval`; a release the
data lack sized on each release held out in turn, :func:`release_residuals`), and fit it on
everything. :func:`leave_systems_out` and
:func:`leave_models_out` run that whole procedure on each outer training set (nested) — or,
with ``structure`` given, skip the choice (the non-nested, optimistic figure).

``holdout`` rows (latencies of models never fitted, e.g. architectures unlike the calibration
models measured on emulated boards) are predicted by the fit on all the training rows; the
``new_model`` interval takes each bound the wider of theirs and the held-out families' (every
family weighing the same in each). They never enter a fit or the structure choice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.estimate.data import Data, queries
from bench.estimate.design import Structure
from bench.estimate.fit import Fitted, fit, predict, slots_of
from bench.estimate.interval import RELEASE_DOUBT, Interval, doubt_of

log = logging.getLogger(__name__)

#: Candidate structures the inner folds choose from. Every one prices a layer's shape (a cost
#: per conv output and per gathered element): the published results cannot judge those terms
#: (no reference layer is thin), emulated single-layer models can (:data:`fit.PRIORS`).
STRUCTURES = (Structure(0.3, False, 0.3, True, robust=1.0, outputs=True, patches=True),
              Structure(0.3, True, 0.3, True, robust=1.0, outputs=True, patches=True),
              Structure(0.3, False, 0.5, True, robust=1.0, outputs=True, patches=True))
INNER_FOLDS = 5
#: Fewest holdout rows that widen the new-model interval (they only ever widen it).
HOLDOUT_MINIMUM = 5


def fit_data(data: Data, structure: Structure, base: Fitted | None = None) -> Fitted:
    """Fit ``structure`` on every row of ``data``."""
    slots = slots_of(data.rows)
    if base is not None:  # keep the shipped slots; records add none
        slots = {**base.slots, **{k: v for k, v in slots.items() if k not in base.slots}}
    boards = {b for b in data.rows["board"] if isinstance(b, str)}
    y = np.log(data.rows["latency_ms"].to_numpy(float))
    return fit(queries(data, slots, boards), y, slots, {**data.rounds, **(base.rounds if base
               else {})}, structure, base)


def held_out(train: Data, test: Data, structure: Structure, base: Fitted | None = None
             ) -> pd.DataFrame:
    """``test`` rows with the prediction of a fit on ``train``: ``log_pred``, ``sd``,
    ``param_sd`` and the release ``resolution`` each used."""
    fitted = fit_data(train, structure, base)
    qs = queries(test, fitted.slots)  # a board the fit never saw keeps its prior's width
    p = predict(fitted, qs)
    return test.rows.assign(log_pred=p.log_ms, sd=p.sd, param_sd=p.param_sd,
                            resolution=[q.release.source for q in qs])


def system_folds(groups: list[str], k: int) -> list[list[str]]:
    """``groups`` (sorted) dealt round-robin into at most ``k`` folds: deterministic."""
    ordered = sorted(set(groups))
    k = max(1, min(k, len(ordered)))
    return [ordered[i::k] for i in range(k)]


def release_key(rows: pd.DataFrame) -> pd.Series:
    """Each row's runtime release (``runtime/slot``): the unit :func:`leave_releases_out`
    and :func:`release_residuals` hold out."""
    return rows["runtime"].astype(str) + "/" + rows["slot"].fillna("none").astype(str)


def inner_residuals(data: Data, structure: Structure, folds: int = INNER_FOLDS) -> pd.DataFrame:
    """Held-out predictions inside ``data``: systems in ``folds`` folds (kind ``systems``) and,
    with three or more model families, each family in turn (kind ``models``)."""
    out = []
    for fold in system_folds(list(data.rows["group"]), folds):
        mask = data.rows["group"].isin(fold)
        if mask.all():
            continue
        out.append(held_out(data.subset(~mask), data.subset(mask), structure)
                   .assign(kind="systems"))
    families = sorted(set(data.rows["family"]))
    if len(families) >= 3:
        for family in families:
            mask = data.rows["family"] == family
            out.append(held_out(data.subset(~mask), data.subset(mask), structure)
                       .assign(kind="models"))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def release_residuals(data: Data, structure: Structure) -> pd.DataFrame:
    """Held-out predictions inside ``data`` of each runtime release in turn, every system
    that ran it held out with it (kind ``releases``; ``held_release`` names the fold): how an
    estimate of a release the data lack strays, as :func:`leave_releases_out` measures it.
    Empty with fewer than two releases."""
    keys = release_key(data.rows)
    names = sorted(set(keys))
    if len(names) < 2:
        return pd.DataFrame()
    out = []
    for key in names:
        mask = (keys == key).to_numpy()
        out.append(held_out(data.subset(~mask), data.subset(mask), structure)
                   .assign(kind="releases", held_release=key))
    return pd.concat(out, ignore_index=True)


#: Interval kinds: an estimate of a calibration model on a new system, and of a new model.
KINDS = {"known_model": "systems", "new_model": "models"}


@dataclass
class Procedure:
    """The outcome of :func:`procedure`: the chosen structure, its fit, and its interval for
    each kind of estimate (:data:`KINDS`)."""

    structure: Structure
    fitted: Fitted
    intervals: dict[str, Interval]
    scores: dict[str, float]  # structure → inner mean absolute log error


def _label(s: Structure) -> str:
    return (f"row sd {s.data_sd:g}, release step {s.release_step:g}"
            + (", release×depthwise" if s.release_class else "")
            + (", per-runtime op cost" if s.runtime_overhead else "")
            + (", 1×1 convs apart" if s.pointwise else "")
            + (", cost per conv output" if s.outputs else "")
            + (", cost per gathered element" if s.patches else ""))


def procedure(data: Data, structures: tuple[Structure, ...] = STRUCTURES,
              folds: int = INNER_FOLDS, holdout: Data | None = None) -> Procedure:
    """Choose a structure by inner cross-validation, calibrate its interval (with ``holdout``
    rows for the new-model one), fit it on all."""
    scores: dict[str, float] = {}
    best: tuple[float, Structure, pd.DataFrame] | None = None
    for s in structures:
        res = inner_residuals(data, s, folds)
        score = float(np.mean(np.abs(np.log(res["latency_ms"]) - res["log_pred"])))
        scores[_label(s)] = round(score, 4)
        if best is None or score < best[0]:
            best = (score, s, res)
    assert best is not None
    _, structure, res = best
    fitted = fit_data(data, structure)
    why = {"systems": f"systems held out in {folds} folds", "models": "each model held out"}
    intervals = {kind: Interval.from_residuals(
        res[res["kind"] == by], f"{why[by]}: {_label(structure)}",
        by="family" if by == "models" else "group") for kind, by in KINDS.items()}
    # a release the data lack: sized on whole releases held out (as a user's unknown release
    # is), not on the few systems whose release happened to be missing from their fold
    intervals["known_model"] = intervals["known_model"].sized_by(
        RELEASE_DOUBT, release_residuals(data, structure), "each release held out",
        by="held_release")
    if holdout is not None and not holdout.rows.empty:
        # no board effect: what they measure is the model's novelty, not a board's
        p = predict(fitted, queries(holdout, fitted.slots, boards=set()))
        rows = holdout.rows.assign(log_pred=p.log_ms, sd=p.sd)
        # the held-out calibration families (real boards, many runtimes, four architectures)
        # and the holdout models (unusual architectures, one runtime): neither alone is "any
        # new model", so each bound is the wider of the two
        part = Interval.from_residuals(rows, "holdout", by="family", minimum=HOLDOUT_MINIMUM)
        if part.residuals:  # too few rows give no calibration, and widen nothing
            intervals["new_model"] = Interval.widest(
                [intervals["new_model"], part],
                f"{why['models']}, and the wider of them and {len(rows)} holdout rows of "
                f"{rows['family'].nunique()} models never fitted: {_label(structure)}")
    return Procedure(structure, fitted, intervals, scores)


def _outer(data: Data, masks: list[tuple[str, np.ndarray]], structure: Structure | None,
           kind: str, holdout: Data | None = None) -> pd.DataFrame:
    out = []
    for name, mask in masks:
        train, test = data.subset(~mask), data.subset(mask)
        if structure is None:
            proc = procedure(train, holdout=holdout)
            chosen, interval = proc.structure, proc.intervals[kind]
        else:
            chosen, interval = structure, Interval()
        res = held_out(train, test, chosen)
        per_row = [interval.for_doubt(doubt_of(r)) for r in res["resolution"]]
        z_low = np.array([i.z_low for i in per_row])
        z_high = np.array([i.z_high for i in per_row])
        log_pred, sd = res["log_pred"].to_numpy(), res["sd"].to_numpy()
        out.append(res.assign(fold=name, structure=_label(chosen), pred_ms=np.exp(log_pred),
                              low_ms=np.exp(log_pred + z_low * sd),
                              high_ms=np.exp(log_pred + z_high * sd), z_low=z_low,
                              z_high=z_high, doubt=[doubt_of(r) for r in res["resolution"]]))
        log.info("held out %s: %s", name, _label(chosen))
    return pd.concat(out, ignore_index=True)


def leave_systems_out(data: Data, structure: Structure | None = None,
                      groups: list[str] | None = None, holdout: Data | None = None
                      ) -> pd.DataFrame:
    """Each system predicted by the procedure run on all the others (nested unless a
    ``structure`` is given, which then gets the Gaussian interval)."""
    names = groups or sorted(set(data.rows["group"]))
    masks = [(g, (data.rows["group"] == g).to_numpy()) for g in names]
    return _outer(data, masks, structure, "known_model", holdout)


def leave_releases_out(data: Data, structure: Structure | None = None,
                       holdout: Data | None = None) -> pd.DataFrame:
    """Each runtime release's rows (every system that ran it) predicted by the procedure run
    on the other releases: how estimates of a release the data lack fare (nearby releases,
    pooled releases), with the known-model interval."""
    keys = release_key(data.rows)
    masks = [(k, (keys == k).to_numpy()) for k in sorted(set(keys))]
    return _outer(data, masks, structure, "known_model", holdout)


def leave_models_out(data: Data, structure: Structure | None = None,
                     holdout: Data | None = None) -> pd.DataFrame:
    """Each model family's rows (an architecture at all its sizes) predicted by the procedure
    run on the other families."""
    masks = [(f, (data.rows["family"] == f).to_numpy())
             for f in sorted(set(data.rows["family"]))]
    return _outer(data, masks, structure, "new_model", holdout)
