"""No code runs from a weights file (issue 13, item 5): TorchScript archives are read for
their tensors only, pickles of objects are refused.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import pytest
import torch


class _WholeModel(torch.nn.Module):
    """A CLIP-like model holding the image tower as ``visual`` (scripted in a test)."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_torchscript_clip_file_is_read_without_running_it(tmp_path, monkeypatch):
    """Was: openclip fell back to ``torch.jit.load``, which runs the archive's code. Now
    only the archive's tensors are read; the weights are the same."""
    import torch

    import brainrank

    tower = brainrank.load_model("openclip/rn50:random").module
    with torch.no_grad():
        for parameter in tower.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    path = tmp_path / "RN50.pt"  # laid out like OpenAI's release: the tower under 'visual'
    torch.jit.script(_WholeModel(tower)).save(str(path))
    calls = []

    def jit_load(*args, **kwargs):  # what the old code did: run the archive
        calls.append(args)
        raise AssertionError("torch.jit.load must never be called on a weights file")

    monkeypatch.setattr(torch.jit, "load", jit_load)
    loaded = brainrank.load_model("openclip/rn50:openai", weights=str(path)).module
    assert not calls
    expected, got = tower.state_dict(), loaded.state_dict()
    assert set(expected) == set(got)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_a_torchscript_archive_with_other_objects_is_refused(tmp_path):
    """An archive whose data.pkl names anything but tensors and modules runs nothing."""
    import pickle
    import zipfile

    from brainrank.plugin import WeightsUnavailableError
    from brainrank.plugins.models.openclip import _read_checkpoint

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
        archive.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("evil/code/__torch__/evil.py", "def forward(self): pass\n")
    with pytest.raises(WeightsUnavailableError, match=r"TorchScript.*state dict") as caught:
        _read_checkpoint("openclip/rn50:openai", path)
    assert str(path) in str(caught.value) and "io.open" in str(caught.value)
    assert not marker.exists()


class _Payload:
    """A pickle that would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_object_weights_file_runs_nothing(tmp_path):
    import torch

    from brainrank.plugin import WeightsUnavailableError
    from brainrank.plugins.models.openclip import _read_checkpoint

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload(marker)}, path)
    with pytest.raises(WeightsUnavailableError, match=r"state dict|tensors") as caught:
        _read_checkpoint("openclip/rn50:openai", path)
    assert str(path) in str(caught.value)
    assert not marker.exists()
