"""The Gabor-energy layers (``baseline/gabor`` and the ``simulated`` dataset's own generator)
against the definition computed with numpy's FFT: magnitude of the grey image (padded)
filtered by each complex Gabor filter's frequency response, cropped to the image."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _energy_by_definition(grey: np.ndarray, bank: np.ndarray, pad: int) -> np.ndarray:
    """``grey``: (n, s, s) zero-mean images; ``bank``: (filters, s + 2 pad, s + 2 pad)."""
    s = grey.shape[-1]
    padded = np.pad(grey.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    spectrum = np.fft.fft2(padded)[:, None]
    response = np.fft.ifft2(spectrum * bank.astype(np.float64)[None])
    return np.abs(response)[..., pad : pad + s, pad : pad + s]


def _grey(x: np.ndarray) -> np.ndarray:
    weights = np.array([0.299, 0.587, 0.114])[None, :, None, None]
    grey = (x * weights).sum(1)
    return grey - grey.mean(axis=(1, 2), keepdims=True)


def _check(energy_module, bank: np.ndarray, pad: int, size: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, size=(3, 3, size, size)).astype(np.float32)
    with torch.inference_mode():
        got = energy_module(torch.from_numpy(x)).numpy()
    want = _energy_by_definition(_grey(x), bank, pad)
    assert got.shape == want.shape == (3, bank.shape[0], size, size)
    # every filter checked (a filter group written to the wrong place or skipped fails)
    per_filter = np.abs(got - want).max(axis=(0, 2, 3)) / np.abs(want).max(axis=(0, 2, 3))
    assert per_filter.max() < 1e-4, per_filter


def test_baseline_gabor_energy_equals_its_definition():
    from brainrank.plugins.models import baselines

    module = baselines._gabor_module()
    energy = module.energy
    _check(energy, energy.bank.numpy(), energy.pad, energy.size)


def test_simulated_gabor_generator_equals_its_definition():
    from brainrank.plugins.datasets import simulated

    module = simulated.generator_model("early").module
    energy = module.energy
    _check(energy, energy.bank.numpy(), simulated.GABOR_PAD, simulated.GABOR_SIZE)


def test_the_simulation_s_frozen_bank_is_the_baseline_s():
    """One Gabor bank: the dataset plugin may not import the model plugin, so it keeps a
    frozen copy; this holds the two filter banks equal, value for value (the generator's
    activations are compared with the registered model's in
    tests/plugins/datasets/test_simulated.py)."""
    from brainrank.plugins.datasets import simulated
    from brainrank.plugins.models import baselines

    theirs = baselines.gabor_bank(simulated.GABOR_SIZE, pad=simulated.GABOR_PAD)
    mine = simulated._gabor_filters(simulated.GABOR_SIZE, simulated.GABOR_PAD)
    assert mine.shape == theirs.shape == (32, 192, 192)
    assert torch.equal(mine, theirs)
    assert (simulated.ORIENTATIONS, simulated.WAVELENGTHS) == (
        baselines.ORIENTATIONS,
        baselines.WAVELENGTHS,
    )
