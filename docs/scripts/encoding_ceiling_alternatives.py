"""The encoding ceiling near reliability 0: brainrank's estimator against two alternatives.

Monte Carlo with known reliabilities (150 stimuli, 4 repetitions, Gaussian noise), as in
``tests/calibration/test_statistics.py``. For each case it prints the bias (mean estimate
minus the true mean sqrt(reliability)) of:

- ``shipped``: :func:`brainrank.core.stats.mean_sqrt_reliability` (NPMLE of the group's
  reliabilities from each neuroid's exact F distribution);
- ``bootstrap``: the same, bias-corrected by a parametric bootstrap from the fitted
  distribution (20 draws of the F statistics);
- ``gated``: the shipped estimate, or 0 when a permutation test (stimulus labels shuffled
  within each repetition, 199 permutations) does not detect stimulus signal at p < .05.

Run: ``python docs/scripts/encoding_ceiling_alternatives.py [--draws 40]`` (a few minutes).
The figures it printed are in docs/validation.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.stats as sps

from brainrank.core.stats import mean_sqrt_reliability

GRID = np.linspace(0.0, 0.999, 200)


def f_statistics(trials: np.ndarray) -> tuple[np.ndarray, int, int]:
    reps, n, _ = trials.shape
    means = trials.mean(axis=0)
    between = reps * means.var(axis=0, ddof=1)
    within = ((trials - means) ** 2).sum(axis=(0, 1)) / (n * (reps - 1))
    return between / within, n - 1, n * (reps - 1)


def npmle_weights(F: np.ndarray, df1: int, df2: int, iterations: int = 500) -> np.ndarray:
    scale = 1.0 - GRID
    log_like = sps.f.logpdf(F[:, None] * scale[None], df1, df2) + np.log(scale)[None]
    like = np.exp(log_like - log_like.max(axis=1, keepdims=True))
    weights = np.full(GRID.size, 1.0 / GRID.size)
    for _ in range(iterations):
        weights = weights * (like.T @ (1.0 / (like @ weights))) / like.shape[0]
    return weights


def bootstrap_corrected(trials: np.ndarray, rng: np.random.Generator, draws: int = 20) -> float:
    F, df1, df2 = f_statistics(trials)
    weights = npmle_weights(F, df1, df2)
    estimate = float(weights @ np.sqrt(GRID))
    again = []
    for _ in range(draws):
        rho = rng.choice(GRID, size=F.size, p=weights / weights.sum())
        simulated = sps.f.rvs(df1, df2, size=F.size, random_state=rng) / (1.0 - rho)
        again.append(float(npmle_weights(simulated, df1, df2) @ np.sqrt(GRID)))
    return 2 * estimate - float(np.mean(again))


def signal_p_value(trials: np.ndarray, rng: np.random.Generator, permutations: int = 199) -> float:
    reps, n, _ = trials.shape
    total = ((trials - trials.mean(axis=(0, 1))) ** 2).sum(axis=(0, 1))

    def statistic(t: np.ndarray) -> float:
        return float((t.mean(axis=0).var(axis=0) / total).sum())

    observed = statistic(trials)
    exceed = 0
    for _ in range(permutations):
        order = np.argsort(rng.random((reps, n)), axis=1)
        exceed += statistic(np.take_along_axis(trials, order[:, :, None], axis=1)) >= observed
    return (1 + exceed) / (1 + permutations)


def problem(rng, reps, low, high, n_signal, n_noise, n=150):
    signal = rng.standard_normal((n, n_signal + n_noise))
    signal[:, n_signal:] = 0.0
    if n_signal:
        part = signal[:, :n_signal]
        signal[:, :n_signal] = (part - part.mean(0)) / part.std(0)
    reliability = np.concatenate([rng.uniform(low, high, n_signal), np.zeros(n_noise)])
    sd = np.where(reliability > 0, np.sqrt(reps * (1 / np.maximum(reliability, 1e-9) - 1)), 1.0)
    return signal, reliability, sd


CASES = [  # (reps, low, high, signal neuroids, noise neuroids, noise correlation)
    (4, 0.35, 0.9, 48, 0, 0.0),
    (4, 0.05, 0.3, 48, 0, 0.0),
    (4, 0.35, 0.9, 48, 12, 0.0),
    (4, 0.0, 0.0, 0, 48, 0.0),
    (4, 0.0, 0.0, 0, 48, 0.5),
    (4, 0.0, 0.1, 48, 0, 0.0),
    (4, 0.0, 0.02, 48, 0, 0.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=40)
    args = parser.parse_args()
    print("reps  reliabilities  signal+noise  corr  truth  | bias: shipped  bootstrap  gated")
    for reps, low, high, n_signal, n_noise, corr in CASES:
        rng = np.random.default_rng(2)
        signal, reliability, sd = problem(rng, reps, low, high, n_signal, n_noise)
        truth = float(np.sqrt(reliability).mean())
        shipped, boot, gated = [], [], []
        for _ in range(args.draws):
            noise = rng.standard_normal((reps, *signal.shape))
            if corr:
                shared = rng.standard_normal((reps, signal.shape[0], 1))
                noise = np.sqrt(1 - corr) * noise + np.sqrt(corr) * shared
            trials = signal[None] + noise * sd
            value = mean_sqrt_reliability(trials)
            shipped.append(value)
            boot.append(bootstrap_corrected(trials, rng))
            gated.append(value if signal_p_value(trials, rng) <= 0.05 else 0.0)
        print(
            f"{reps:4d}  {low:.2f}-{high:.2f}      {n_signal:3d}+{n_noise:<3d}      {corr:.1f}  "
            f"{truth:.3f}  |  {np.mean(shipped) - truth:+.4f}   {np.mean(boot) - truth:+.4f}"
            f"   {np.mean(gated) - truth:+.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
