"""Trained weights found where each family keeps them, without a network: tests save the
state dict of a randomly initialised network under the expected name in a temporary cache
(or as an explicit file) and check that the trained variant loads exactly those values."""

from __future__ import annotations

import pytest
import torch

import brainrank
from brainrank.core.errors import WeightsUnavailableError
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores


def perturbed_state(module) -> dict[str, torch.Tensor]:
    """A state dict that differs from ``module``'s seeded initialisation everywhere."""
    generator = torch.Generator().manual_seed(123)
    out = {}
    for key, value in module.state_dict().items():
        if value.is_floating_point():
            value = value + 0.01 * torch.randn(value.shape, generator=generator)
        out[key] = value.clone()
    return out


def assert_loaded(module, state: dict[str, torch.Tensor]) -> None:
    loaded = module.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)


def test_torchvision_from_the_torch_hub_cache_and_from_a_file(torch_home, tmp_path):
    random = brainrank.load_model("torchvision/squeezenet1_1:random")
    state = perturbed_state(random.module)
    torch.save(state, torch_home / "squeezenet1_1-b8a52dc0.pth")  # the file name of the URL
    trained = brainrank.load_model("torchvision/squeezenet1_1")
    assert_loaded(trained.module, state)
    assert trained.metadata.trained and trained.metadata.training_data == "ImageNet-1k"
    assert trained.metadata.n_params == random.metadata.n_params > 0

    explicit = tmp_path / "mine.pth"
    torch.save(perturbed_state(trained.module), explicit)
    from_file = brainrank.load_model("torchvision/squeezenet1_1", weights=str(explicit))
    assert_loaded(from_file.module, torch.load(explicit, weights_only=True))
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        brainrank.load_model("torchvision/squeezenet1_1", weights=str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="cannot read the weights file"):
        brainrank.load_model("torchvision/squeezenet1_1", weights=str(tmp_path / "junk.pth"))
    other = tmp_path / "squeezenet1_0.pth"  # a real state dict, of another architecture
    torch.save(brainrank.load_model("torchvision/squeezenet1_0:random").module.state_dict(), other)
    with pytest.raises(
        WeightsUnavailableError,
        match=r"squeezenet1_0\.pth does not fit 'torchvision/squeezenet1_1'",
    ):
        brainrank.load_model("torchvision/squeezenet1_1", weights=str(other))


def test_timm_from_the_hugging_face_cache(hf_home, hf_put):
    from safetensors.torch import save_file

    random = brainrank.load_model("timm/resnet18:random")
    state = perturbed_state(random.module)
    hf_put(hf_home, "timm/resnet18.a1_in1k", "model.safetensors", lambda p: save_file(state, p))
    trained = brainrank.load_model("timm/resnet18")
    assert_loaded(trained.module, state)
    assert trained.metadata.training_data == "ImageNet-1k"
    assert trained.metadata.extra["pretrained_tag"] == "a1_in1k"
    # a tagged name reads its own repository, absent here
    with pytest.raises(WeightsUnavailableError, match=r"timm/resnet18\.tv_in1k"):
        brainrank.load_model("timm/resnet18.tv_in1k")


def test_open_clip_from_the_hugging_face_cache(hf_home, hf_put, tiny_stimuli):
    from safetensors.torch import save_file

    random = brainrank.load_model("openclip/rn50:random")
    state = perturbed_state(random.module)
    whole_model = {f"visual.{k}": v for k, v in state.items()}
    whole_model["text_projection"] = torch.zeros(4, 4)  # other towers' entries are ignored
    hf_put(hf_home, "timm/resnet50_clip.openai", "open_clip_model.safetensors",
           lambda p: save_file(whole_model, p))  # fmt: skip
    trained = brainrank.load_model("openclip/rn50:openai")
    assert_loaded(trained.module, state)
    meta = trained.metadata
    assert meta.trained and meta.training_data == "WIT-400M" and meta.family == "convnet"
    assert (meta.task, meta.training_method) == ("language-image", "clip")
    assert trained.preprocess.interpolation == "bicubic" and trained.preprocess.size == 224
    x = torch.stack([trained.preprocess(tiny_stimuli.image(s)) for s in tiny_stimuli.stimulus_ids])
    with torch.no_grad():
        assert trained.module(x).shape == (len(tiny_stimuli), 1024)  # the CLIP image embedding


def test_taskonomy_from_the_torch_hub_cache(torch_home):
    import visualpriors.taskonomy_network as network

    random = brainrank.load_model("taskonomy/random")
    state = perturbed_state(random.module)
    url = network.TASKONOMY_PRETRAINED_URLS["normal_encoder"]
    torch.save({"state_dict": state}, torch_home / url.rsplit("/", 1)[1])
    trained = brainrank.load_model("taskonomy/normal")
    assert_loaded(trained.module, state)
    assert trained.metadata.task_cluster == "3D" and trained.metadata.task == "taskonomy:normal"


def test_a_run_records_missing_weights_and_goes_on(tmp_path, tiny_plugin_path, torch_home):
    registry = Registry(plugin_files=[tiny_plugin_path])
    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(registry=registry, store=store, datasets=["tiny/data"], metrics=["rsa"],
                       models=["cifar/resnet20", "cifar/resnet20:random"], progress=False)  # fmt: skip
    assert [(f.stage, f.model) for f in summary.failures] == [("model", "cifar/resnet20")]
    assert "resnet20-12fca82f.th" in summary.failures[0].error
    assert set(scores(store, selection="max")["model"]) == {"cifar/resnet20:random"}


@pytest.mark.parametrize("how", ["environment", "config file"])
def test_offline_setting_reaches_model_weights_without_changing_the_environment(tmp_path, how):
    """One offline switch for datasets and weights alike (BRAINRANK_OFFLINE or `offline` in
    config.toml), and building a model never changes the process environment."""
    import os
    import subprocess
    import sys

    code = (
        "import os, brainrank\n"
        "from brainrank.plugin import WeightsUnavailableError\n"
        "from brainrank.data import is_offline\n"
        "before = dict(os.environ)\n"
        "try:\n"
        "    brainrank.load_model('timm/resnet18')\n"
        "except WeightsUnavailableError as exc:\n"
        "    print('refused', 'offline' in str(exc).lower() or 'BRAINRANK_OFFLINE' in str(exc))\n"
        "print('dataset-offline', is_offline())\n"
        "print('same-env', dict(os.environ) == before)\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "BRAINRANK_"))}
    env.update(BRAINRANK_HOME=str(home), HF_HOME=str(tmp_path / "hf"))
    if how == "environment":
        env["BRAINRANK_OFFLINE"] = "1"
    else:
        (home / "config.toml").write_text("offline = true\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=300).stdout.split("\n")  # fmt: skip
    assert "refused True" in out
    assert "dataset-offline True" in out
    assert "same-env True" in out
