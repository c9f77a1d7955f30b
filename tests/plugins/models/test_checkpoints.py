"""A checkpoint is a model: BASE@TAG identifiers give other weights of an architecture a
leaderboard model of their own (known checkpoints from the family plugins, a user's own file
as a user checkpoint), trunk-only files load without their head, and keys that really do not
fit are named."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import brainrank
from brainrank.cli import main
from brainrank.core.checkpoints import is_user_checkpoint
from brainrank.core.errors import InputError, UnknownIdentifierError, WeightsUnavailableError
from brainrank.core.identifiers import check_identifier, split_checkpoint
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import models, open_store, scores


def test_identifier_grammar():
    for good in ("torchvision/resnet50@barlowtwins", "openclip/rn50:openai@mine",
                 "slip/vit-b16@slip-cc12m", "torchvision/resnet50@npid++"):  # fmt: skip
        assert check_identifier(good) == good
    for bad in ("torchvision/resnet50@", "a@b@c", "torchvision/ResNet50@x", "@nsd2023"):
        with pytest.raises(InputError, match="@checkpoint"):
            check_identifier(bad)
    assert split_checkpoint("torchvision/resnet50@simclr") == ("torchvision/resnet50", "simclr")
    assert split_checkpoint("timm/resnet50.a1_in1k") == ("timm/resnet50.a1_in1k", None)


def test_a_user_checkpoint_is_a_model_of_its_own():
    registry = Registry()
    spec = registry.get("model", "torchvision/resnet18@mine")
    assert is_user_checkpoint(spec) and spec.plugin == "torchvision"
    meta = spec.metadata
    assert (meta.architecture, meta.family, meta.input_size) == ("resnet18", "convnet", 224)
    assert (meta.task, meta.training_method, meta.training_data) == ("unknown",) * 3
    assert meta.imagenet_top1 is None and meta.extra["checkpoint"]["of"] == "torchvision/resnet18"
    # a family without a plain trained model: the base is one of its checkpoints
    ipcl = registry.get("model", "ipcl/alexnet-gn@mylab")
    assert is_user_checkpoint(ipcl) and ipcl.metadata.architecture == "alexnet-gn"
    # registered checkpoints are not user checkpoints
    assert not is_user_checkpoint(registry.get("model", "torchvision/resnet50@simclr"))
    for nothing in ("baseline/pixels@x", "torchvision/resnet18:random@x", "no/such@x"):
        with pytest.raises(UnknownIdentifierError):
            registry.get("model", nothing)  # no trained architecture to hold the weights


def test_a_trunk_only_checkpoint_loads_without_its_head(tmp_path, tiny_stimuli):
    random = brainrank.load_model("torchvision/resnet18:random")
    trunk = {k: v + 0.01 for k, v in random.module.state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "trunk.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trunk.items()}}, path)
    mine = brainrank.load_model("torchvision/resnet18@mine", weights=str(path))
    assert mine.identifier == "torchvision/resnet18@mine"
    assert isinstance(mine.module.fc, torch.nn.Identity)
    assert mine.metadata.extra["heads_removed"] == ["fc"]
    assert mine.metadata.n_params == random.metadata.n_params - 512 * 1000 - 1000
    torch.testing.assert_close(
        mine.module.state_dict()["layer4.1.bn2.bias"], trunk["layer4.1.bn2.bias"]
    )
    x = torch.stack([mine.preprocess(tiny_stimuli.image(s)) for s in tiny_stimuli.stimulus_ids])
    with torch.no_grad():
        assert mine.module(x).shape == (4, 512)  # the trunk's features
    # what is known about it can be stated, and is checked against the vocabulary
    told = brainrank.load_model("torchvision/resnet18@mine", weights=str(path),
                                training_method="simclr", task="contrastive self-supervision",
                                training_data="imagenet-1k")  # fmt: skip
    assert (told.metadata.training_method, told.metadata.training_data) == ("simclr", "ImageNet-1k")
    with pytest.raises(InputError, match="training method 'simclr2'"):
        brainrank.load_model(
            "torchvision/resnet18@mine", weights=str(path), training_method="simclr2"
        )
    # --weights ID=PATH keeps working for the model itself
    same = brainrank.load_model("torchvision/resnet18", weights=str(path))
    assert (
        same.identifier == "torchvision/resnet18" and same.metadata.training_data == "ImageNet-1k"
    )


def test_errors_say_which_keys_and_what_to_do(tmp_path):
    with pytest.raises(WeightsUnavailableError, match=r"--weights torchvision/resnet18@mine=PATH"):
        brainrank.load_model("torchvision/resnet18@mine")
    random = brainrank.load_model("torchvision/resnet18:random").module.state_dict()
    state = {k.replace("layer4", "stage4"): v for k, v in random.items()}
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(WeightsUnavailableError) as info:
        brainrank.load_model("torchvision/resnet18@mine", weights=str(path))
    message = str(info.value)
    assert str(path) in message and "'layer4.0.conv1.weight'" in message
    assert "'stage4.0.conv1.weight'" in message and "converting its keys" in message
    wide = {**random, "fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    torch.save(wide, path)
    with pytest.raises(WeightsUnavailableError, match=r"size mismatch for fc\.weight"):
        brainrank.load_model("torchvision/resnet18@mine", weights=str(path))


def test_the_grid_keeps_a_checkpoint_apart_from_its_architecture(tmp_path, tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    random = brainrank.load_model("cifar/resnet20:random").module.state_dict()
    base_file, mine_file = tmp_path / "base.th", tmp_path / "mine.th"
    for seed, path in ((1, base_file), (2, mine_file)):
        generator = torch.Generator().manual_seed(seed)
        torch.save({k: v + 0.01 * torch.randn(v.shape, generator=generator)
                    if v.is_floating_point() else v for k, v in random.items()}, path)  # fmt: skip
    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(
        registry=registry, store=store, datasets=["tiny/data"], metrics=["rsa"],
        models=["cifar/resnet20", "cifar/resnet20@mine"], progress=False,
        model_options={"cifar/resnet20": {"weights": str(base_file)},
                       "cifar/resnet20@mine": {"weights": str(mine_file),
                                               "training_method": "barlowtwins"}},
    )  # fmt: skip
    assert summary.failures == []
    rows = models(store).set_index("model")
    assert {"cifar/resnet20", "cifar/resnet20@mine"} <= set(rows.index)
    assert rows.loc["cifar/resnet20@mine", "training_method"] == "barlowtwins"
    assert rows.loc["cifar/resnet20@mine", "task"] == "unknown"
    assert rows.loc["cifar/resnet20", "training_data"] == "CIFAR-10"
    assert (
        rows.loc["cifar/resnet20", "weights_hash"]
        != rows.loc["cifar/resnet20@mine", "weights_hash"]
    )
    best = scores(store, selection="max")
    assert set(best["model"]) == {"cifar/resnet20", "cifar/resnet20@mine"}
    assert set(scores(store, training_method="barlowtwins")["model"]) == {"cifar/resnet20@mine"}


def test_run_command_takes_checkpoints_and_what_is_known_of_them(tmp_path, tiny_plugin_path):
    random = brainrank.load_model("cifar/resnet20:random").module.state_dict()
    path = tmp_path / "mine.th"
    torch.save(random, path)
    db = str(tmp_path / "lb.db")
    base = ["run", "--plugin", str(tiny_plugin_path), "--datasets", "tiny/data", "--metrics",
            "rsa", "--db", db, "--quiet", "--models", "cifar/resnet20@mine"]  # fmt: skip
    missing = CliRunner().invoke(main, base)
    assert missing.exit_code == 1 and "--weights cifar/resnet20@mine=PATH" in missing.output
    wrong = CliRunner().invoke(main, [*base, "--weights", f"cifar/resnet20@mine={path}",
                                      "--model-info", "cifar/resnet20@mine.task=clasification"])  # fmt: skip
    assert wrong.exit_code == 1 and "'clasification' is not in brainrank's task" in wrong.output
    ok = CliRunner().invoke(main, [*base, "--weights", f"cifar/resnet20@mine={path}",
                                   "--model-info", "cifar/resnet20@mine.task=classification",
                                   "--model-info", "cifar/resnet20@mine.training_data=CIFAR-10"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    row = models(open_store(db)).set_index("model").loc["cifar/resnet20@mine"]
    assert (row["task"], row["training_data"], row["training_method"]) == (
        "classification", "CIFAR-10", "unknown")  # fmt: skip
