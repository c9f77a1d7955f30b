"""``brainrank export maps``: per-voxel scores of a whole-brain dataset written as NIfTI
volumes in each subject's space, read back with nibabel: the dataset's affine, and at every
scored voxel the leaderboard's per-voxel value (NaN elsewhere)."""

from __future__ import annotations

import json

import nibabel
import numpy as np
import pytest
from click.testing import CliRunner
from test_bold5000_wholebrain import AFFINE, SHAPE, make_glmsingle

from brainrank.cli import main
from brainrank.core.errors import InputError
from brainrank.leaderboard import per_neuroid
from brainrank.leaderboard.maps import maps, voxel_indices

DATASET = "bold5000/wholebrain(sessions=2)"
MODELS = ("baseline/pixels", "baseline/gabor")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("maps")
    make_glmsingle(tmp / "bold5000")
    db = str(tmp / "lb.db")
    result = CliRunner().invoke(main, [
        "run", "--models", ",".join(MODELS), "--datasets", "bold5000/wholebrain",
        "--metrics", "srp-ridge:nsd", "--data-dir", str(tmp), "--db", db, "--quiet",
        "--dataset-option", "bold5000/wholebrain.sessions=2",
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp, db


def invoke(*args):
    return CliRunner().invoke(main, ["export", "maps", *args], catch_exceptions=False)


def test_score_maps_read_back_with_the_affine_and_the_leaderboard_values(scored):
    tmp, db = scored
    out = tmp / "maps"
    result = invoke(str(out), "--db", db, "--dataset", DATASET, "--metric", "srp-ridge:nsd")
    assert result.exit_code == 0, result.output
    values = per_neuroid(db=db, dataset=DATASET, metric="srp-ridge:nsd", selection="max")
    assert not values.empty
    files = sorted(out.glob("*.nii.gz"))
    assert len(files) == len(MODELS) * 3  # a file per model and subject
    for (model, subject), rows in values.groupby(["model", "subject"]):
        name = f"score_{model.replace('/', '_')}_bold5000_wholebrain_sessions=2_srp-ridge_nsd_{subject}"
        image = nibabel.load(out / f"{name}.nii.gz")
        np.testing.assert_allclose(image.affine, AFFINE)
        data = np.asarray(image.dataobj)
        assert data.shape == SHAPE and data.dtype == np.float32
        ijk = voxel_indices(rows["neuroid_id"])
        np.testing.assert_allclose(data[tuple(ijk.T)], rows["value"].to_numpy(), rtol=1e-6)
        assert np.isfinite(data).sum() == len(rows)  # NaN wherever no voxel was scored
        sidecar = json.loads((out / f"{name}.json").read_text())
        assert sidecar["model"] == model and sidecar["subject"] == subject


def test_contrast_map_is_the_difference_of_the_two_models(scored):
    _tmp, db = scored
    (found,) = [m for m in maps(db, dataset=DATASET, metric="srp-ridge:nsd", quantity="contrast",
                               contrast=MODELS, subject="CSI2")]  # fmt: skip
    values = per_neuroid(db=db, dataset=DATASET, metric="srp-ridge:nsd", selection="max",
                         subject="CSI2")  # fmt: skip
    a = values[values["model"] == MODELS[0]].set_index("neuroid_id")["value"]
    b = values[values["model"] == MODELS[1]].set_index("neuroid_id")["value"]
    ijk = voxel_indices(a.index)
    np.testing.assert_allclose(found.data[tuple(ijk.T)], (a - b.loc[a.index]).to_numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(found.affine, AFFINE)


def test_refusals(scored):
    _tmp, db = scored
    with pytest.raises(InputError, match="no per-voxel values"):
        maps(db, dataset=DATASET, metric="srp-ridge:nsd", model="torchvision/*")
    with pytest.raises(InputError, match="records no brain volumes"):
        maps(db, dataset="bold5000", metric="srp-ridge:nsd")
    with pytest.raises(InputError, match="needs two models"):
        maps(db, dataset=DATASET, metric="srp-ridge:nsd", quantity="contrast")
    with pytest.raises(InputError, match="not a voxel"):
        voxel_indices(["CSI1/LHPPA/3"])


def test_the_report_section_draws_slices_of_the_maps(scored, tmp_path):
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.maps import peak_voxel
    from brainrank.leaderboard.report import NoData, ReportOptions, render
    from brainrank.leaderboard.report_maps import section_maps

    _, db = scored
    store = open_store(db)
    section = section_maps(store, ReportOptions())
    (_, table), *_ = section.tables
    assert len(table) == len(MODELS) * 3 and len(section.figures) == 2
    found = {(m.about["model"], m.about["subject"]): m
             for m in maps(db, dataset=DATASET, metric="srp-ridge:nsd")}  # fmt: skip
    for row in table.itertuples():
        brain_map = found[(row.model, row.subject)]
        assert row.n_voxels == np.isfinite(brain_map.data).sum()
        assert row.mean == pytest.approx(np.nanmean(brain_map.data), abs=1e-4)
        assert row.peak_ijk == "-".join(map(str, peak_voxel(brain_map.data)))
    # the glass brain: the drawn (best) map's peak, seen along each axis
    glass = dict(section.tables)["Glass-brain peaks"]
    assert section.figures[1].data.round(4).equals(glass.reset_index(drop=True))  # its CSV
    best = max(found.values(), key=lambda m: float(np.nanmean(m.data)))
    first = min(s for (m, s) in found if m == best.about["model"])
    drawn = found[(best.about["model"], first)]
    assert list(glass["model"]) == [best.about["model"]] * 3 and set(glass["subject"]) == {first}
    assert list(glass["projection"]) == ["sagittal", "coronal", "axial"]  # AFFINE is LAS
    peak = peak_voxel(drawn.data)
    for row in glass.itertuples():
        assert row.peak_ijk == "-".join(map(str, peak))  # no ties in a map of floats
        assert row.peak == pytest.approx(drawn.data[peak], abs=1e-4)
    page = render(store, [section])
    assert "<svg" in page and "data:image/png" not in page  # vector cells, no bitmap
    assert page.count("<svg") >= 2
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(NoData, match="nothing to show"):
        section_maps(empty, ReportOptions())


def test_layer_weights_and_their_argmax_in_the_volume():
    """Stacking's per-layer weights as a 4D volume and the argmax layer, on hand-made rows
    (a voxel listed in two regions holds the mean of its values)."""
    import pandas as pd

    from brainrank.leaderboard.maps import argmax_layer, layer_stack

    volume = {"shape": [3, 2, 2], "affine": np.eye(4).tolist()}
    rows = pd.DataFrame({
        "neuroid_id": ["s/V1/0-0-0", "s/V1/2-1-1", "s/V1/0-0-0", "s/V1/2-1-1",
                       "s/FFA/2-1-1", "s/FFA/2-1-1"],
        "layer": ["conv1", "conv1", "fc", "fc", "conv1", "fc"],
        "value": [0.7, 0.2, 0.3, 0.5, 0.4, 0.5],
    })  # fmt: skip
    layers, stack = layer_stack(rows, volume)
    assert layers == ["conv1", "fc"] and stack.shape == (3, 2, 2, 2)
    np.testing.assert_allclose(stack[0, 0, 0], [0.7, 0.3])
    np.testing.assert_allclose(stack[2, 1, 1], [0.3, 0.5])  # conv1: mean of 0.2 and 0.4
    assert np.isnan(stack[1, 0, 0]).all() and np.isfinite(stack).sum() == 4
    best = argmax_layer(stack)
    assert best[0, 0, 0] == 0 and best[2, 1, 1] == 1
    assert np.isnan(best).sum() == 3 * 2 * 2 - 2


def make_twelve_images(root, seed: int = 0) -> None:
    """A whole-brain fixture with 12 images (stacking needs more than the 6 of the other):
    release 1's trial lists (3 repetitions each) and images, two GLMsingle sessions."""
    from dataset_fixtures import jpeg_file

    rng = np.random.default_rng(seed)
    names = [f"scene{i:02d}.jpg" for i in range(12)]
    for subject in ("CSI1", "CSI2", "CSI3"):
        order = list(rng.permutation(12))
        lines = [names[i] for i in order] + [f"rep_{names[i]}" for i in order[:3]]
        lists = root / "ROIs/stim_lists"
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"CSI0{subject[3:]}_stim_lists.txt").write_text("\n".join(lines) + "\n")
        trials = rng.normal(size=(4, 3, 3, len(lines))).astype(np.float32)
        for session, (a, b) in enumerate(((0, 8), (8, 15)), 1):
            path = (
                root
                / "GLMsingle"
                / f"{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{session:02d}.nii.gz"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            nibabel.save(nibabel.Nifti1Image(trials[..., a:b], AFFINE), path)
    gy, gx = np.mgrid[0:12, 0:16]
    for i, name in enumerate(names):
        image = rng.uniform(40, 200, 3) + (i + 1) * gx[..., None] - 2.0 * gy[..., None]
        jpeg_file(root / "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/Scene" / name,
                  np.clip(image, 0, 255).astype(np.uint8))  # fmt: skip


def test_stacking_weight_maps_end_to_end(tmp_path):
    make_twelve_images(tmp_path / "bold5000")
    db = str(tmp_path / "lb.db")
    result = CliRunner().invoke(main, [
        "run", "--models", "baseline/gabor", "--datasets", "bold5000/wholebrain",
        "--metrics", "stacking", "--data-dir", str(tmp_path), "--db", db, "--quiet",
        "--dataset-option", "bold5000/wholebrain.sessions=2",
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "maps"
    for quantity in ("weights", "argmax-weight"):
        done = invoke(str(out), "--db", db, "--dataset", DATASET, "--metric", "stacking",
                      "--quantity", quantity, "--subject", "CSI1")  # fmt: skip
        assert done.exit_code == 0, done.output
    stem = "baseline_gabor_bold5000_wholebrain_sessions=2_stacking_CSI1"
    weights = nibabel.load(out / f"weights_{stem}.nii.gz")
    layers = json.loads((out / f"weights_{stem}.json").read_text())["layers"]
    data = np.asarray(weights.dataobj)
    np.testing.assert_allclose(weights.affine, AFFINE)
    assert data.shape == (4, 3, 3, len(layers)) and len(layers) >= 2
    rows = per_neuroid(db=db, dataset=DATASET, metric="stacking", selection="weight",
                       subject="CSI1")  # fmt: skip
    for n, layer in enumerate(layers):
        part = rows[rows["layer"] == layer]
        ijk = voxel_indices(part["neuroid_id"])
        np.testing.assert_allclose(data[(*ijk.T, n)], part["value"].to_numpy(), rtol=1e-6)
    scored = np.isfinite(data).all(axis=-1)
    assert scored.sum() == 4 * 3 * 3  # every voxel of the grid has usable betas here
    np.testing.assert_allclose(data[scored].sum(axis=-1), 1.0, atol=1e-4)  # convex weights
    argmax = np.asarray(nibabel.load(out / f"argmax-weight_{stem}.nii.gz").dataobj)
    np.testing.assert_array_equal(argmax[scored], np.argmax(data[scored], axis=-1))


def hand_bh(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg's step-up rule written out: reject the k smallest p-values, k the
    largest rank with p_(k) <= k alpha / m."""
    order = np.argsort(p)
    below = np.flatnonzero(p[order] <= np.arange(1, p.size + 1) * alpha / p.size)
    rejected = np.zeros(p.size, dtype=bool)
    if below.size:
        rejected[order[: below[-1] + 1]] = True
    return rejected


def test_fdr_mask_of_planted_voxels_is_benjamini_hochberg_of_pearson_p_values():
    """Pearson r of 30 planted voxels and 970 null ones over 40 stimuli: the mask is
    scipy's Benjamini-Hochberg of scipy's one-sided Pearson p-values, and null voxels with
    an uncorrected p below alpha are left out (the correction is made)."""
    import scipy.stats

    from brainrank.leaderboard.maps import fdr_volume

    rng = np.random.default_rng(3)
    n, alpha = 40, 0.05
    x = rng.normal(size=(n, 1000))
    y = rng.normal(size=(n, 1000))
    y[:, :30] += 1.5 * x[:, :30]  # planted: r about 0.8
    test = scipy.stats.pearsonr(x, y, axis=0, alternative="greater")
    r, p = test.statistic, test.pvalue
    data = r.reshape(10, 10, 10).copy()
    data[9, 9, 5:] = np.nan  # not scored: outside the family
    scored = np.isfinite(data)
    mask, q = fdr_volume(data, n, alpha)
    p_scored = p.reshape(10, 10, 10)[scored]
    expected = scipy.stats.false_discovery_control(p_scored) <= alpha
    np.testing.assert_array_equal(mask[scored], expected.astype(np.float32))
    np.testing.assert_array_equal(expected, hand_bh(p_scored, alpha))
    np.testing.assert_allclose(q[scored], scipy.stats.false_discovery_control(p_scored),
                               rtol=1e-5)  # fmt: skip
    assert np.isnan(mask[~scored]).all() and np.isnan(q[~scored]).all()
    planted = np.zeros(1000, dtype=bool)
    planted[:30] = True
    planted = planted.reshape(10, 10, 10)[scored]
    assert mask[scored][planted].all()
    uncorrected = (p_scored <= alpha) & ~planted
    assert uncorrected.sum() > 20  # about 5% of the null voxels
    assert mask[scored][uncorrected].sum() <= 2  # BH keeps almost none of them
    with pytest.raises(InputError, match="alpha"):
        fdr_volume(data, n, 1.0)
    with pytest.raises(InputError, match="\\[-1, 1\\]"):
        fdr_volume(data * 3, n, alpha)


def test_fdr_maps_read_back_equal_bh_of_the_leaderboard_r(tmp_path):
    """`--quantity fdr` and `q-value` end to end (srp-ridge over the 12-image fixture):
    read back with nibabel, they equal scipy's Benjamini-Hochberg of the exact null
    distribution of r (a beta distribution on [-1, 1]) at the leaderboard's per-voxel r, n
    the dataset's recorded stimuli."""
    import scipy.stats

    from brainrank.leaderboard import open_store

    make_twelve_images(tmp_path / "bold5000")
    db = str(tmp_path / "lb.db")
    result = CliRunner().invoke(main, [
        "run", "--models", ",".join(MODELS), "--datasets", "bold5000/wholebrain",
        "--metrics", "srp-ridge", "--data-dir", str(tmp_path), "--db", db, "--quiet",
        "--dataset-option", "bold5000/wholebrain.sessions=2",
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "fdr"
    alpha = 0.9  # random betas, 12 stimuli: a loose rate leaves voxels on both sides
    for quantity in ("fdr", "q-value"):
        result = invoke(str(out), "--db", db, "--dataset", DATASET, "--metric", "srp-ridge",
                        "--quantity", quantity, "--alpha", str(alpha))  # fmt: skip
        assert result.exit_code == 0, result.output
    frame = open_store(db).datasets_frame()
    n = int(frame.loc[frame["identifier"] == DATASET, "n_stimuli"].iloc[0])
    null = scipy.stats.beta(n / 2 - 1, n / 2 - 1, loc=-1, scale=2)
    assert n == 12
    values = per_neuroid(db=db, dataset=DATASET, metric="srp-ridge", selection="max")
    both_sides = set()
    for (model, subject), rows in values.groupby(["model", "subject"]):
        stem = f"{model.replace('/', '_')}_bold5000_wholebrain_sessions=2_srp-ridge_{subject}"
        mask = nibabel.load(out / f"fdr_{stem}.nii.gz")
        q = np.asarray(nibabel.load(out / f"q-value_{stem}.nii.gz").dataobj)
        np.testing.assert_allclose(mask.affine, AFFINE)
        mask = np.asarray(mask.dataobj)
        rows = rows[np.isfinite(rows["value"])]
        ijk = voxel_indices(rows["neuroid_id"])
        p = null.sf(rows["value"].to_numpy())
        expected_q = scipy.stats.false_discovery_control(p)
        np.testing.assert_allclose(q[tuple(ijk.T)], expected_q, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(mask[tuple(ijk.T)], hand_bh(p, alpha).astype(np.float32))
        assert np.isfinite(mask).sum() == len(rows)
        both_sides |= set(np.unique(mask[tuple(ijk.T)]).tolist())
        sidecar = json.loads((out / f"fdr_{stem}.json").read_text())
        assert sidecar["n_stimuli"] == n and sidecar["alpha"] == alpha
    assert both_sides == {0.0, 1.0}
    # --n-stimuli: the p-values of r over that many stimuli
    result = invoke(str(out / "n40"), "--db", db, "--dataset", DATASET, "--metric", "srp-ridge",
                    "--quantity", "q-value", "--n-stimuli", "40", "--subject", "CSI1",
                    "--model", MODELS[0])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = values[(values["model"] == MODELS[0]) & (values["subject"] == "CSI1")]
    rows = rows[np.isfinite(rows["value"])]
    stem = f"{MODELS[0].replace('/', '_')}_bold5000_wholebrain_sessions=2_srp-ridge_CSI1"
    q = np.asarray(nibabel.load(out / "n40" / f"q-value_{stem}.nii.gz").dataobj)
    p = scipy.stats.beta(19, 19, loc=-1, scale=2).sf(rows["value"].to_numpy())
    np.testing.assert_allclose(q[tuple(voxel_indices(rows["neuroid_id"]).T)],
                               scipy.stats.false_discovery_control(p), rtol=1e-4, atol=1e-6)  # fmt: skip
    refused = CliRunner().invoke(main, ["export", "maps", str(out), "--db", db, "--dataset",
                                        DATASET, "--metric", "srp-ridge", "--quantity",
                                        "fdr", "--alpha", "1.5"])  # fmt: skip
    assert refused.exit_code != 0 and "--alpha" in refused.output


def test_maximum_intensity_projection_against_a_loop():
    """Each line's value of largest magnitude, its sign kept, against a loop over the lines;
    the views named from the affine's axis directions."""
    from brainrank.leaderboard.maps import max_intensity_projection, projection_names

    rng = np.random.default_rng(5)
    data = rng.normal(size=(4, 5, 6))
    data[rng.random(data.shape) < 0.3] = np.nan
    data[:, 2, 3] = np.nan  # an empty line along i
    for axis in range(3):
        plane, depth = max_intensity_projection(data, axis)
        moved = np.moveaxis(data, axis, -1)
        for a in range(moved.shape[0]):
            for b in range(moved.shape[1]):
                line = moved[a, b]
                if np.isnan(line).all():
                    assert np.isnan(plane[a, b]) and depth[a, b] == -1
                    continue
                best = max((v for v in line if v == v), key=abs)
                assert plane[a, b] == best and line[depth[a, b]] == best
    assert np.isnan(max_intensity_projection(data, 0)[0][2, 3])
    assert projection_names(AFFINE) == ["sagittal", "coronal", "axial"]
    swapped = np.array(
        [[0, 0, 2, 0], [2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1.0]]
    )  # i: A, j: S, k: R
    assert projection_names(swapped) == ["coronal", "axial", "sagittal"]
    oblique = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    names = projection_names(oblique)
    assert len(set(names)) == 3
