"""``bold5000/wholebrain``: BOLD5000 release 2.0 GLMsingle betas, every brain voxel, read from
a fixture in the release's file names and NIfTI layout (synthetic values) and checked
against the values written, computed independently here (scipy, pandas)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from dataset_fixtures import make_bold5000

from brainrank.core.errors import DataUnavailableError, InputError
from brainrank.plugins.datasets import bold5000_wholebrain as wholebrain

SHAPE = (5, 4, 3)
AFFINE = np.array([[-2.0, 0, 0, 70.0], [0, 2.0, 0, -88.0], [0, 0, 2.0, -60.0], [0, 0, 0, 1]])
SESSION_TRIALS = (5, 4)  # the fixture's 9 trials (6 images + 3 repetitions) in 2 sessions


def make_glmsingle(root: Path, subjects=("CSI1", "CSI2", "CSI3"), seed: int = 0) -> dict:
    """Release 1's trial lists and images (make_bold5000), and per subject and session a
    ``CSI{N}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-XX.nii.gz`` of float32 betas
    (X, Y, Z, trials): zero outside an ellipsoid "brain", one voxel NaN in session 2."""
    import nibabel

    make_bold5000(root, subjects=subjects, seed=seed, nan_voxel=False)
    rng = np.random.default_rng(seed + 10)
    truth = {}
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in SHAPE], indexing="ij"))
    brain = (grid**2).sum(0) <= 1.6
    for n, subject in enumerate(subjects):
        lines = (root / f"ROIs/stim_lists/CSI0{subject[3:]}_stim_lists.txt").read_text().split()
        trials = rng.normal(1.0, 2.0, (*SHAPE, len(lines))).astype(np.float32)
        trials[~brain] = 0.0
        nan_voxel = tuple(np.argwhere(brain)[n])  # a brain voxel, different per subject
        start = 0
        for session, count in enumerate(SESSION_TRIALS, 1):
            block = trials[..., start : start + count].copy()
            if session == 2:
                block[(*nan_voxel, 0)] = np.nan
            image = nibabel.Nifti1Image(block, AFFINE)
            path = root / wholebrain.BETAS_DIR / wholebrain.betas_name(subject, session)
            path.parent.mkdir(parents=True, exist_ok=True)
            nibabel.save(image, path)
            start += count
        truth[subject] = {"lines": lines, "trials": trials, "brain": brain, "nan": nan_voxel}
    return truth


def expected_responses(truth: dict, zscore: bool) -> pd.DataFrame:
    """Per voxel (columns ``i-j-k``), the mean over presentations of each image (rows), the
    betas z-scored per session first (scipy's population z-score)."""
    trials = truth["trials"]
    voxels = [tuple(v) for v in np.argwhere(truth["brain"]) if tuple(v) != truth["nan"]]
    columns = {}
    for v in voxels:
        series = trials[v].astype(np.float64)
        if zscore:
            bounds = np.cumsum((0, *SESSION_TRIALS))
            series = np.concatenate(
                [scipy.stats.zscore(series[a:b]) for a, b in itertools.pairwise(bounds)]
            )
        columns["-".join(map(str, v))] = series
    frame = pd.DataFrame(columns)
    frame["image"] = [line.removeprefix("rep_") for line in truth["lines"]]
    return frame.groupby("image", sort=False).mean()


def expected_reliability(truth: dict, voxel: tuple[int, int, int]) -> float:
    """Split-half (first vs second presentation over the repeated images), Spearman-Brown."""
    series = truth["trials"][voxel].astype(np.float64)
    bounds = np.cumsum((0, *SESSION_TRIALS))
    series = np.concatenate(
        [scipy.stats.zscore(series[a:b]) for a, b in itertools.pairwise(bounds)]
    )
    keys = [line.removeprefix("rep_") for line in truth["lines"]]
    repeated = [k for k in dict.fromkeys(keys) if keys.count(k) > 1]
    first = [series[keys.index(k)] for k in repeated]
    second = [series[len(keys) - 1 - keys[::-1].index(k)] for k in repeated]
    r = scipy.stats.pearsonr(first, second)[0]
    return 2 * r / (1 + r)


@pytest.fixture
def glm_root(tmp_path):
    root = tmp_path / "bold5000"
    return root, make_glmsingle(root)


def test_voxels_values_and_volume_of_every_subject(glm_root):
    import nibabel

    root, truth = glm_root
    dataset = wholebrain.build(root, sessions=2)
    r = dataset.responses()
    assert set(r["region"].values) == {"wholebrain"}
    for subject, content in truth.items():
        expected = expected_responses(content, zscore=True)
        own = r.sel(neuroid=r["subject"] == subject)
        ijk = np.stack([own[f"voxel_{a}"].values for a in "ijk"], axis=1)
        names = ["-".join(map(str, v)) for v in ijk]
        # every brain voxel but the one with a NaN beta; none outside the brain
        assert sorted(names) == sorted(expected.columns)
        assert list(own["neuroid_id"].values) == [f"{subject}/wholebrain/{n}" for n in names]
        got = pd.DataFrame(own.values, index=list(own["stimulus_id"].values), columns=names)
        np.testing.assert_allclose(
            got.loc[expected.index, expected.columns].to_numpy(), expected.to_numpy(), atol=1e-5
        )
        volume = dataset.info["volumes"][subject]
        assert volume["shape"] == list(SHAPE)
        np.testing.assert_allclose(volume["affine"], AFFINE)
        # a per-voxel quantity goes back into the subject's volume through the kept indices
        values = own["split_half"].values
        image = nibabel.Nifti1Image(np.full(SHAPE, np.nan, np.float32), np.array(volume["affine"]))
        image.dataobj[tuple(ijk.T)] = values
        back = np.asarray(image.dataobj)[tuple(ijk.T)]
        np.testing.assert_allclose(back, values.astype(np.float32))
        for v, value in zip(ijk[:5], values[:5], strict=True):
            assert value == pytest.approx(expected_reliability(content, tuple(v)), rel=1e-4)
        counts = dataset.info["voxels"][subject]
        assert counts["constant or non-finite betas"] == 1
        assert counts["kept"] == len(names)


def test_percent_signal_change_mask_file_and_threshold(glm_root):
    import nibabel

    root, truth = glm_root
    raw = wholebrain.build(root, subjects=["CSI1"], sessions=2, zscore=False)
    expected = expected_responses(truth["CSI1"], zscore=False)
    r = raw.responses()
    names = [
        "-".join(map(str, v)) for v in zip(*(r[f"voxel_{a}"].values for a in "ijk"), strict=True)
    ]
    got = pd.DataFrame(r.values, index=list(r["stimulus_id"].values), columns=names)
    np.testing.assert_allclose(
        got.loc[expected.index, expected.columns].to_numpy(), expected.to_numpy(), atol=1e-5
    )
    # a brain-mask file restricts the voxels to it
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:3, 1:3, :] = 1
    nibabel.save(nibabel.Nifti1Image(mask, AFFINE), root / "GLMsingle" / "CSI1_brainmask.nii.gz")
    masked = wholebrain.build(root, subjects=["CSI1"], sessions=2).responses()
    inside = {tuple(v) for v in np.argwhere(mask > 0)} - {truth["CSI1"]["nan"]}
    got_voxels = set(zip(*(masked[f"voxel_{a}"].values.tolist() for a in "ijk"), strict=True))
    assert got_voxels == inside
    # the split-half selection keeps the voxels at or above the threshold
    everyone = wholebrain.build(root, subjects=["CSI1"], sessions=2).responses()
    threshold = float(np.nanmedian(everyone["split_half"].values))
    kept = wholebrain.build(root, subjects=["CSI1"], sessions=2,
                            reliability_threshold=threshold).responses()  # fmt: skip
    assert set(kept["neuroid_id"].values) == set(
        everyone["neuroid_id"].values[everyone["split_half"].values >= threshold]
    )
    assert 0 < kept.sizes["neuroid"] < everyone.sizes["neuroid"]


def test_missing_files_and_mismatches_say_what_to_do(glm_root):
    root, _ = glm_root
    with pytest.raises(DataUnavailableError, match="Give sessions=2"):
        wholebrain.build(root)  # 15 sessions expected, 2 present
    (root / "GLMsingle" / wholebrain.betas_name("CSI2", 2)).unlink()
    with pytest.raises(
        DataUnavailableError, match="CSI2_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-02"
    ):
        wholebrain.build(root, sessions=2)
    lists = root / "ROIs/stim_lists/CSI01_stim_lists.txt"
    lists.write_text("\n".join(lists.read_text().split()[:7]) + "\n")
    with pytest.raises(InputError, match=r"hold 9 betas but .* lists 7 trials"):
        wholebrain.build(root, subjects=["CSI1"], sessions=2)


def test_scored_end_to_end_with_per_voxel_values(tmp_path, glm_root):
    """The whole-brain fixture through `brainrank run` (its session count given as a
    --dataset-option): per-voxel scores stored under the voxels' ids."""
    from click.testing import CliRunner

    from brainrank.cli import main
    from brainrank.leaderboard import per_neuroid

    root, truth = glm_root
    db = str(tmp_path / "lb.db")
    result = CliRunner().invoke(main, [
        "run", "--models", "baseline/pixels", "--datasets", "bold5000/wholebrain",
        "--metrics", "srp-ridge:nsd", "--data-dir", str(root.parent), "--db", db, "--quiet",
        "--dataset-option", "bold5000/wholebrain.sessions=2",
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    values = per_neuroid(db=db, dataset="bold5000/wholebrain(sessions=2)", selection="max")
    assert not values.empty
    n_voxels = sum(int(c["brain"].sum()) - 1 for c in truth.values())
    assert values["neuroid_id"].nunique() == n_voxels
    assert values["neuroid_id"].str.fullmatch(r"CSI[123]/wholebrain/\d+-\d+-\d+").all()
