"""Ranked cells and per-neuroid values whose sampling is known, for the rank-uncertainty
tests (tests/leaderboard/test_uncertainty*.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainrank.leaderboard.uncertainty import NeuroidValues


def neuroid_cells(
    levels: dict[str, float],
    *,
    regions=("V1", "V2", "V4"),
    subjects=("s1",),
    n_neuroids=60,
    shared_sd=0.15,
    own_sd=0.1,
    seed=0,
    dataset="d",
    config="srp-ridge",
):
    """Cells of one column whose per-neuroid values are ``level + shared_v + own_mv`` (a
    neuroid effect every model shares, skewed, and a model's own noise, heavy-tailed): models
    with equal levels are equal over the population of neuroids. Returns (cells, arrays)."""
    rng = np.random.default_rng(seed)
    rows, arrays = [], {}
    for region in regions:
        for subject in subjects:
            v = n_neuroids if np.isscalar(n_neuroids) else int(rng.integers(*n_neuroids))
            shared = shared_sd * (rng.gamma(2.0, size=v) - 2.0) / np.sqrt(2.0)
            ids = np.array([f"{subject}-{region}-{i}" for i in range(v)], dtype=object)
            for model, level in levels.items():
                own = own_sd * rng.standard_t(5, size=v) / np.sqrt(5 / 3)
                values = level + shared + own
                arrays[(model, dataset, config, region, subject)] = NeuroidValues(ids, values)
                rows.append({"model": model, "dataset": dataset, "config": config,
                             "region": region, "subject": subject,
                             "value": float(values.mean())})  # fmt: skip
    return pd.DataFrame(rows), arrays


def subject_cells(
    levels: dict[str, float],
    *,
    n_subjects=6,
    regions=("V1", "V2"),
    subject_sd=0.1,
    own_sd=0.05,
    seed=0,
    dataset="d",
    config="rsa",
):
    """Cells of a population metric (no per-neuroid values) over ``n_subjects`` subjects:
    ``level + subject effect + region effect + a model's own noise per subject``."""
    rng = np.random.default_rng(seed)
    subject_effect = subject_sd * rng.standard_normal(n_subjects)
    region_effect = 0.05 * rng.standard_normal(len(regions))
    rows = []
    for model, level in levels.items():
        own = own_sd * rng.standard_normal(n_subjects)  # a model's fit to each brain
        for s in range(n_subjects):
            for r, region in enumerate(regions):
                value = level + subject_effect[s] + region_effect[r] + own[s]
                rows.append({"model": model, "dataset": dataset, "config": config,
                             "region": region, "subject": f"s{s}", "value": value})  # fmt: skip
    return pd.DataFrame(rows)
