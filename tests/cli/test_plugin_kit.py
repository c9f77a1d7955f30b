"""The contributor kit: `brainrank plugin new` writes packages that pass their own tests,
and once pip-installed (into a throwaway environment on top of this one) they are listed
and scored like built-in plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.cli.plugin import render_plugin
from brainrank.core.errors import InputError

PLUGINS = {
    "model": ("mylab/mynet", "brainrank-mylab-mynet", "brainrank_mylab_mynet"),
    "dataset": ("mylab/recordings", "brainrank-mylab-recordings", "brainrank_mylab_recordings"),
    "metric": ("mylab/cka", "brainrank-mylab-cka", "brainrank_mylab_cka"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    folders = {}
    for kind, (identifier, _, _) in PLUGINS.items():
        folder = root / kind
        result = CliRunner().invoke(main, ["plugin", "new", kind, identifier, "--dir", str(folder)])
        assert result.exit_code == 0, result.output
        folders[kind] = folder
    return folders


def test_plugin_new_writes_a_complete_package(generated):
    folder = generated["model"]
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == [
        ".gitignore",
        "README.md",
        "brainrank_mylab_mynet.py",
        "pyproject.toml",
        "tests/test_plugin.py",
    ]
    pyproject = (folder / "pyproject.toml").read_text()
    assert '[project.entry-points.brainrank]\nmylab-mynet = "brainrank_mylab_mynet"' in pyproject
    assert 'name = "brainrank-mylab-mynet"' in pyproject
    assert "brainrank run --models mylab/mynet" in (folder / "README.md").read_text()
    for kind, (identifier, _, module) in PLUGINS.items():
        text = (generated[kind] / f"{module}.py").read_text()
        assert f'IDENTIFIER = "{identifier}"' in text and "$" not in text.replace("$$", "")


def test_generated_packages_pass_their_own_tests(generated):
    procs = {
        kind: subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(folder)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for kind, folder in generated.items()
    }
    for kind, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{kind} plugin tests failed:\n{out[-4000:]}"
        assert "4 passed" in out, out[-2000:]


def test_generated_packages_pass_the_linter(generated):
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this Python")
    for folder in generated.values():
        for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
            out = subprocess.run([str(ruff), *args], cwd=folder, capture_output=True, text=True)
            assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture
def throwaway_env(tmp_path):
    """A virtual environment whose site-packages chains to this one's (so brainrank and its
    dependencies are there), for installing the generated packages without touching this
    environment. The packages are uninstalled afterwards."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "zz_chain_to_parent_env.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n"
    )
    installed: list[str] = []
    yield python, installed
    if installed:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "uninstall", "-y", *installed],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        listed = subprocess.run(
            [str(python), "-m", "brainrank", "models", "mylab/*"], capture_output=True, text=True
        )
        assert "mylab/mynet" not in listed.stdout


def test_installed_plugins_are_listed_and_scored(generated, throwaway_env, tmp_path):
    python, installed = throwaway_env
    editables = [arg for folder in generated.values() for arg in ("-e", str(folder))]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            *editables,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    installed += [package for _, package, _ in PLUGINS.values()]

    def brainrank(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(python), "-m", "brainrank", *args], capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    models = json.loads(brainrank("models", "mylab/*", "--format", "json").stdout)
    assert [m["identifier"] for m in models] == ["mylab/mynet"]
    assert models[0]["plugin"] == "mylab-mynet" and models[0]["family"] == "convnet"
    assert "mylab/recordings" in brainrank("datasets").stdout
    assert "mylab/cka" in brainrank("metrics").stdout
    # score the new model on the new dataset with the new metric (and a built-in one)
    data = tmp_path / "data"
    subprocess.run(
        [
            str(python),
            "-c",
            "import brainrank_mylab_recordings as p; "
            f"p.write_example_files({str(data / 'mylab_recordings')!r})",
        ],
        check=True,
    )
    db = tmp_path / "lb.db"
    brainrank(
        "run",
        "--models",
        "mylab/mynet,baseline/pixels",
        "--datasets",
        "mylab/recordings",
        "--metrics",
        "mylab/cka,rsa",
        "--data-dir",
        str(data),
        "--db",
        str(db),
        "--quiet",
    )
    rows = json.loads(brainrank("leaderboard", "--db", str(db), "--format", "json").stdout)
    scored = {(r["model"], r["metric"]) for r in rows if r["selection"] == "max"}
    assert {("mylab/mynet", "mylab/cka"), ("mylab/mynet", "rsa")} <= scored
    cka = [r for r in rows if r["metric"] == "mylab/cka" and r["selection"] == "layer"]
    assert {r["region"] for r in cka} == {"V1", "IT"} and all(0 <= r["score"] <= 1 for r in cka)
    shown = brainrank("show", "mylab/mynet", "--db", str(db)).stdout
    assert "conv1" in shown and "family: convnet" in shown


def test_plugin_new_refuses_bad_names_and_occupied_folders(tmp_path):
    result = CliRunner().invoke(
        main, ["plugin", "new", "model", "MyLab/Net", "--dir", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "invalid model identifier 'MyLab/Net'" in result.output
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        main, ["plugin", "new", "metric", "mylab/m", "--dir", str(occupied)]
    )
    assert result.exit_code == 1 and "not empty" in result.output
    assert sorted(p.name for p in occupied.iterdir()) == ["keep.txt"]
    result = CliRunner().invoke(main, ["plugin", "new", "layer", "x"])
    assert result.exit_code == 2  # click's usage error lists the kinds
    assert set(render_plugin("dataset", "lab/d:v2")) >= {"pyproject.toml", "README.md"}


def test_plugin_check_command(tmp_path):
    result = CliRunner().invoke(main, ["plugin", "check", "brainrank.plugins.metrics.rsa"])
    assert result.exit_code == 0, result.output
    assert "ok  metric rsa" in result.output and "every check passed" in result.output
    eager = tmp_path / "eager.py"
    eager.write_text(
        "import torch\n"
        "from brainrank import MetricMetadata, MetricSpec, hookimpl\n"
        "from brainrank.plugins.metrics.rsa import RSA\n"
        "@hookimpl\n"
        "def brainrank_metrics():\n"
        "    return [MetricSpec('eager/rsa', RSA, MetricMetadata('rsa'))]\n"
    )
    result = CliRunner().invoke(main, ["plugin", "check", str(eager)])
    assert result.exit_code == 1 and "imported torch: listing must be lazy" in result.output
    result = CliRunner().invoke(main, ["plugin", "check", "no_such_module_anywhere"])
    assert result.exit_code == 1 and "cannot import 'no_such_module_anywhere'" in result.output


# --------------------------------------------------------------------------- issue 24, item 5


def test_a_skipped_check_is_reported_and_fails_under_strict(generated, tmp_path):
    module = generated["dataset"] / "brainrank_mylab_recordings.py"
    runner = CliRunner()
    result = runner.invoke(main, ["plugin", "check", str(module), "--no-lazy"])
    assert result.exit_code == 0, result.output
    assert "skipped  dataset mylab/recordings: its files are not in the configured data folder" in (
        result.output
    )
    assert "every check passed" not in result.output
    assert "0 passed, 1 skipped" in result.output
    strict = runner.invoke(main, ["plugin", "check", str(module), "--no-lazy", "--strict"])
    from brainrank.cli.plugin import EXIT_SKIPPED

    assert strict.exit_code == EXIT_SKIPPED and "--strict: a skipped check fails" in strict.output
    # with its files, nothing is skipped
    import importlib.util

    spec = importlib.util.spec_from_file_location("recordings_for_files", module)
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    plugin.write_example_files(tmp_path / plugin.FOLDER)
    full = runner.invoke(main, ["plugin", "check", str(module), "--no-lazy", "--strict",
                                "--data-dir", str(tmp_path)])  # fmt: skip
    assert full.exit_code == 0 and "every check passed" in full.output, full.output


def test_the_dataset_template_marks_its_example_data_simulated(generated):
    text = (generated["dataset"] / "brainrank_mylab_recordings.py").read_text()
    assert 'species="simulated",' in text and 'species="human"' not in text


def test_a_model_needs_its_source_for_built_in_and_third_party_plugins(tmp_path):
    result = CliRunner().invoke(main, ["plugin", "new", "model", "my-model", "--dir",
                                       str(tmp_path / "x")])  # fmt: skip
    assert result.exit_code == 1 and "add a source, e.g. 'mylab/my-model'" in result.output
    assert not (tmp_path / "x").exists()
    from brainrank.core.specs import ModelMetadata, ModelSpec

    meta = ModelMetadata(source="x", architecture="y", family="convnet")
    with pytest.raises(InputError, match="'source/name'"):  # the same rule for every spec
        ModelSpec("my-model", lambda: None, meta)
    # datasets and metrics may be one name, as the built-in 'simulated' and 'rsa'
    assert CliRunner().invoke(main, ["plugin", "new", "metric", "mymetric", "--dir",
                                     str(tmp_path / "m")]).exit_code == 0  # fmt: skip


def test_the_generated_package_names_where_brainrank_comes_from(tmp_path):
    from brainrank.cli.plugin import brainrank_requirement

    requirement = brainrank_requirement()
    # this checkout is installed from its folder (pip install -e .): a path requirement
    assert requirement.startswith("brainrank @ file://"), requirement
    text = render_plugin("model", "mylab/net")["pyproject.toml"]
    assert f'dependencies = ["{requirement}"]' in text
    chosen = "brainrank @ git+https://example.org/lab/brainrank@v0.1.0"
    result = CliRunner().invoke(main, ["plugin", "new", "model", "mylab/net", "--dir",
                                       str(tmp_path / "p"), "--brainrank", chosen])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f'dependencies = ["{chosen}"]' in (tmp_path / "p" / "pyproject.toml").read_text()


def test_the_generated_package_resolves_without_a_package_index(generated, throwaway_env):
    python, _ = throwaway_env
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run",
         "--no-build-isolation", "--no-index", str(generated["model"])],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "Would install" in out.stdout and "brainrank-mylab-mynet" in out.stdout


def test_plugin_try_checks_scores_and_places_the_model_in_the_whole_leaderboard(
    tiny_plugin_path, tmp_path, monkeypatch
):
    from brainrank.cli import plugin as plugin_cli

    monkeypatch.setattr(plugin_cli, "TRY_DATASET", "tiny/data")  # simulated takes minutes
    monkeypatch.setattr(plugin_cli, "TRY_MODELS", ("baseline/pixels",))
    db = str(tmp_path / "lb.db")
    result = CliRunner().invoke(main, ["plugin", "try", str(tiny_plugin_path), "--db", db,
                                       "--metrics", "srp-ridge", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ok  model tiny/net" in result.output and "ok  dataset tiny/data" in result.output
    assert "the whole leaderboard" in result.output
    marked = [line for line in result.output.splitlines() if "<- new" in line]
    assert len(marked) == 1 and "tiny/net" in marked[0]
    assert "tiny/net ranks " in result.output and " of 2 on real data" in result.output
    assert "baseline/pixels" in result.output  # the rest of the leaderboard is there
