"""Datasets built with options (``--dataset-option NAME.KEY=VALUE``, ``[dataset_options]``):
checked up front, named by their options, never mixed with the base dataset, and read by the
mouse paper's analyses (reliability sweep, cre-line breakdown) end to end on an Allen fixture
in the real NWB layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from dataset_fixtures import write_allen_nwb, write_json

import brainrank
from brainrank.cli import main
from brainrank.core.dataset_options import (
    check_dataset_options,
    default_options,
    option_identifier,
)
from brainrank.core.errors import InputError
from brainrank.core.hashing import dataset_hash
from brainrank.core.registry import get_registry
from brainrank.leaderboard import analyses, open_store, scores
from brainrank.plugins.datasets import allen

N_IMAGES = 12
BASE = "allen/natural-scenes"


def make_allen_sweep(root: Path, seed: int = 0) -> None:
    """Two natural-scenes experiments (VISp Cux2, VISl Rorb), 12 images x 4 repetitions,
    cells from strongly to weakly image-driven, so that reliability thresholds keep
    different cells."""
    rng = np.random.default_rng(seed)
    records = []
    for experiment, area, cre, first in ((601, "VISp", "Cux2-CreERT2", 100),
                                         (602, "VISl", "Rorb-IRES2-Cre", 200)):  # fmt: skip
        cells = list(range(first, first + 6))
        gains = np.array([1.0, 0.8, 0.012, 0.008, 0.005, 0.0])[:, None]
        signal = gains * rng.normal(0, 1, (6, N_IMAGES + 1))
        genotype = f"{cre}/wt;Camk2a-tTA/wt;Ai93(TITL-GCaMP6f)/wt"
        write_allen_nwb(root / f"ophys_experiment_data/{experiment}.nwb", cells=cells,
                        signal=signal, n_images=N_IMAGES, seed=seed + experiment,
                        location=area, genotype=genotype)  # fmt: skip
        records += [
            {"cell_specimen_id": c, "experiment_container_id": experiment + 7000, "area": area,
             "tld1_name": cre, "imaging_depth": 175, "p_run_mod_ns": None}
            for c in cells
        ]  # fmt: skip
    write_json(root / "cell_specimens.json", records)


@pytest.fixture
def allen_data(tmp_path):
    data = tmp_path / "data"
    make_allen_sweep(data / allen.FOLDER)
    return data


def run(*args: str):
    return CliRunner().invoke(main, ["run", *args, "--quiet"], catch_exceptions=False)


# --------------------------------------------------------------------------- naming, checks


def test_option_identifiers_read_back_by_the_analyses():
    assert option_identifier(BASE, {}) == BASE
    named = option_identifier(BASE, {"reliability_threshold": 0.5, "cre_lines": ["Cux2-CreERT2"]})
    assert named == 'allen/natural-scenes(cre_lines=["Cux2-CreERT2"],reliability_threshold=0.5)'
    assert option_identifier(BASE, {"cre_lines": "all"}) == "allen/natural-scenes(cre_lines=all)"
    assert option_identifier(BASE, {"x": "0.5"}) == 'allen/natural-scenes(x="0.5")'
    assert option_identifier(BASE, {"x": None, "y": True}) == "allen/natural-scenes(x=null,y=true)"
    # the analyses' own reader of dataset entries gets the options back
    assert analyses.option_datasets(
        __import__("pandas").DataFrame({"dataset": [BASE, named]}), "reliability_threshold"
    ) == {0.5: named}


def test_options_are_checked_against_the_factory():
    spec = get_registry().get("dataset", BASE)
    assert default_options(spec)["reliability_threshold"] == 0.8
    with pytest.raises(InputError, match=r"takes no option 'threshold'.*reliability_threshold"):
        check_dataset_options(spec, {"threshold": 0.5}, "--dataset-option")
    with pytest.raises(InputError, match=r"'high' is a string.*float \| None"):
        check_dataset_options(spec, {"reliability_threshold": "high"}, "--dataset-option")
    with pytest.raises(InputError, match="is a number"):
        check_dataset_options(spec, {"include_blank": 1}, "--dataset-option")
    assert check_dataset_options(spec, {"reliability_threshold": None}, "x") == {
        "reliability_threshold": None
    }
    # an option at its default is no option: the base dataset
    assert check_dataset_options(spec, {"reliability_threshold": 0.8, "running_p": 0.05}, "x") == {}
    assert check_dataset_options(spec, {"cre_lines": ["Cux2-CreERT2"]}, "x") == {
        "cre_lines": ["Cux2-CreERT2"]
    }


def test_usage_errors_before_any_work(tmp_path, allen_data):
    db = tmp_path / "lb.db"
    common = ("--models", "baseline/pixels", "--datasets", BASE, "--metrics", "rsa",
              "--data-dir", str(allen_data), "--db", str(db))  # fmt: skip
    cases = {
        "allen/natural-scenes.threshold=0.5": "takes no option 'threshold'. Its options: areas",
        "allen/natural-scenes.reliability_threshold=[0.5": "not valid JSON",
        "allen/natural-scenes.reliability_threshold=high": "'high' is a string",
        "simulated.reliability_threshold=0.5": "'simulated', which is not among the datasets",
        "allen/natural-scenes=0.5": "must look like ID.KEY=VALUE",
    }
    for option, message in cases.items():
        result = CliRunner().invoke(main, ["run", *common, "--dataset-option", option])
        assert result.exit_code != 0 and message in result.output, (option, result.output)
    twice = CliRunner().invoke(main, ["run", *common,
                                      "--dataset-option", f"{BASE}.reliability_threshold=0.5",
                                      "--dataset-option", f"{BASE}.reliability_threshold=0.7"])  # fmt: skip
    assert twice.exit_code != 0 and "is given twice" in twice.output
    # a value the factory refuses when it builds: an error of that option, nothing stored
    none_left = CliRunner().invoke(
        main, ["run", *common, "--dataset-option", f"{BASE}.reliability_threshold=1.5"]
    )
    assert none_left.exit_code != 0
    assert "reliability_threshold=1.5" in none_left.output and "no cell passes" in none_left.output
    assert not db.exists() or scores(open_store(str(db))).empty


# --------------------------------------------------------------------------- end to end


def test_reliability_sweep_and_cre_lines_end_to_end(tmp_path, allen_data, brainrank_home):
    db = str(tmp_path / "lb.db")
    common = ("--models", "baseline/pixels,baseline/gabor", "--datasets", BASE, "--metrics",
              "rsa", "--data-dir", str(allen_data), "--db", db)  # fmt: skip
    root = allen_data / allen.FOLDER
    kept = {t: allen.build(root, reliability_threshold=t).responses().sizes["neuroid"]
            for t in (0.3, 0.8)}  # fmt: skip
    assert kept[0.3] > kept[0.8] >= 4  # the thresholds keep different cells
    for threshold in ("0.3", "0.8"):  # 0.8: the default, i.e. the base dataset
        result = run(*common, "--dataset-option", f"{BASE}.reliability_threshold={threshold}")
        assert result.exit_code == 0, result.output
    # the cre line from config.toml: a dataset entry of its own too
    (brainrank_home / "config.toml").write_text(
        f'[dataset_options."{BASE}"]\ncre_lines = ["Cux2-CreERT2"]\n'
    )
    result = run(*common)
    assert result.exit_code == 0, result.output
    frame = scores(open_store(db))
    variant = f"{BASE}(reliability_threshold=0.3)"
    cux2 = f'{BASE}(cre_lines=["Cux2-CreERT2"])'
    assert set(frame["dataset"]) == {BASE, variant, cux2}
    # each entry holds the scores of the dataset built with its options (oracle: the factory
    # called directly, scored through the Python API)
    for name, options in ((variant, {"reliability_threshold": 0.3}), (BASE, {}),
                          (cux2, {"cre_lines": ["Cux2-CreERT2"]})):  # fmt: skip
        built = allen.build(root, **options)
        built.identifier = name
        direct = brainrank.score("baseline/pixels", built, "rsa")
        stored = frame[(frame["dataset"] == name) & (frame["model"] == "baseline/pixels")]
        for selection in ("max",):
            a = direct[direct["selection"] == selection].set_index("region")["score"]
            b = stored[stored["selection"] == selection].set_index("region")["score"]
            assert set(a.index) == set(b.index) and len(a)
            np.testing.assert_allclose(b.loc[a.index].to_numpy(), a.to_numpy(), rtol=1e-6)
    cre = frame[(frame["dataset"] == cux2) & (frame["selection"] == "max")]
    assert set(cre["region"]) == {"VISp"}  # the Cux2 cells are the VISp experiment's
    # the entries' data hashes differ (the identifier enters it) and are recorded
    with open_store(db).engine.connect() as conn:
        rows = dict(conn.exec_driver_sql("select identifier, data_hash from datasets").fetchall())
    assert len(set(rows.values())) == 3
    renamed = allen.build(root, reliability_threshold=0.3)
    renamed.identifier = variant
    assert rows[variant] == dataset_hash(renamed)
    # the analyses that told users to run with --dataset-option read the entries
    sweep = analyses.reliability_sweep(frame, metrics=["rsa"], n_boot=50)["rsa"]
    assert sorted(sweep.summary["reliability_threshold"]) == [0.3, 0.8]
    assert set(sweep.summary["n_models"]) == {2}
    # a cre line from the command line goes over config.toml's; the breakdown reads both
    rorb = run(*common, "--dataset-option", f'{BASE}.cre_lines=["Rorb-IRES2-Cre"]')
    assert rorb.exit_code == 0, rorb.output
    lines = analyses.cre_line_breakdown(scores(open_store(db)), metric="rsa", n_boot=50)
    assert set(lines.summary["cre_lines"]) == {"Cux2-CreERT2", "Rorb-IRES2-Cre"}
    assert set(lines.summary["n_models"]) == {2}
    # the command line's option goes over config.toml's, key by key: both options
    both = run(*common, "--dataset-option", f"{BASE}.reliability_threshold=0.3")
    assert both.exit_code == 0, both.output
    merged = f'{BASE}(cre_lines=["Cux2-CreERT2"],reliability_threshold=0.3)'
    assert merged in set(scores(open_store(db))["dataset"])
    # the same options again: everything is already stored
    (brainrank_home / "config.toml").unlink()
    n_rows = len(scores(open_store(db)))
    again = run(*common, "--dataset-option", f"{BASE}.reliability_threshold=0.3")
    assert again.exit_code == 0 and "written: 0 scores" in again.stderr, again.stderr
    assert len(scores(open_store(db))) == n_rows


def test_a_dask_worker_rebuilds_the_optioned_dataset(allen_data):
    from brainrank.grid.context import Context, GridConfig

    options = {BASE: {"reliability_threshold": 0.3}}
    context = Context(GridConfig(store=None, run_id=None, data_dir=str(allen_data),
                                 dataset_options=options))  # fmt: skip
    name = option_identifier(BASE, options[BASE])
    dataset = context.dataset(name)
    direct = allen.build(allen_data / allen.FOLDER, reliability_threshold=0.3)
    assert dataset.identifier == name
    assert dataset.responses().sizes == direct.responses().sizes
    base = context.dataset(BASE)
    assert base.responses().sizes["neuroid"] < dataset.responses().sizes["neuroid"]


def test_the_python_api_and_config_file_checks(allen_data, brainrank_home, monkeypatch):
    from brainrank.settings import settings

    monkeypatch.setenv("BRAINRANK_DATA", str(allen_data))
    frame = brainrank.score("baseline/pixels", BASE, "rsa",
                            dataset_options={"reliability_threshold": 0.3})  # fmt: skip
    assert set(frame["dataset"]) == {f"{BASE}(reliability_threshold=0.3)"}
    with pytest.raises(InputError, match="takes no option 'bogus'"):
        brainrank.score("baseline/pixels", BASE, "rsa", dataset_options={"bogus": 1})
    (brainrank_home / "config.toml").write_text("[dataset_options]\nthreshold = 0.5\n")
    with pytest.raises(InputError, match="must be a table of tables"):
        settings()


def test_a_dataset_object_may_carry_its_options_in_its_name(stimuli_factory):
    from brainrank.core.dataset import Dataset
    from brainrank.core.identifiers import check_dataset_identifier
    from brainrank.core.responses import make_responses
    from brainrank.core.specs import DatasetMetadata

    assert check_dataset_identifier('allen/natural-scenes(cre_lines=["Cux2-CreERT2"])')
    for bad in ("Allen/Natural(x=1)", "allen natural(x=1)", "(x=1)"):
        with pytest.raises(InputError, match="invalid dataset identifier"):
            check_dataset_identifier(bad)
    stimuli = stimuli_factory(n=4)
    responses = make_responses(np.zeros((4, 2)), stimulus_id=list(stimuli.stimulus_ids),
                               neuroid_id=["a", "b"], subject="s", region="r")  # fmt: skip
    named = Dataset("tiny/data(threshold=0.5)", stimuli, DatasetMetadata(species="human", modality="fMRI"),
                    responses=responses)  # fmt: skip
    assert named.identifier == "tiny/data(threshold=0.5)"


def test_a_factory_with_keyword_options_judges_any_key():
    from brainrank.core.specs import DatasetMetadata, DatasetSpec

    def factory(data_dir=None, **options):
        raise AssertionError("not built here")

    spec = DatasetSpec("lab/data", factory, DatasetMetadata(species="human", modality="fMRI"))
    assert check_dataset_options(spec, {"anything": 1}, "x") == {"anything": 1}
    strict = DatasetSpec("lab/strict", lambda data_dir=None, level=1: None,
                         DatasetMetadata(species="human", modality="fMRI"))  # fmt: skip
    with pytest.raises(InputError, match=r"takes no option 'anything'. Its options: level = 1"):
        check_dataset_options(strict, {"anything": 1}, "x")
    assert check_dataset_options(strict, {"level": 1}, "x") == {}  # its default: no option


def test_dask_workers_build_the_optioned_dataset_as_this_process_does(tmp_path, allen_data):
    """Two worker processes rebuild allen/natural-scenes with its options from the data
    folder and store the scores a serial run stores."""
    distributed = pytest.importorskip("distributed")
    from brainrank.core.registry import Registry
    from brainrank.grid import run_grid
    from brainrank.leaderboard.compare import compare

    grid = {"registry": Registry(), "models": ["baseline/pixels"], "datasets": [BASE],
            "metrics": ["rsa"], "data_dir": allen_data, "progress": False,
            "dataset_options": {BASE: {"reliability_threshold": 0.3}}}  # fmt: skip
    serial = open_store(str(tmp_path / "serial.db"))
    assert run_grid(store=serial, **grid).status == "ok"
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:  # fmt: skip
        store = open_store(str(tmp_path / "cluster.db"))
        summary = run_grid(store=store, scheduler=cluster.scheduler_address, **grid)
        assert summary.status == "ok", summary.failures
    assert set(scores(store)["dataset"]) == {f"{BASE}(reliability_threshold=0.3)"}
    result = compare(serial, store, tolerance=1e-4)  # single-threaded float32 sums
    assert result.n_common == len(scores(serial)) > 0 and result.changed.empty
