"""Trainable weights round-trip through both formats, and nothing else is unpickled."""
from __future__ import annotations

import pickle

import pytest
import torch

from model.state import load_flamingo, load_trainable, read_trainable
from tests.model.model_helpers import TINY_LMS, encode, images, make_model


def _perturbed(lm_name="tiny-gpt2"):
    model, tok = make_model(lm_name)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model, tok


@pytest.mark.parametrize("lm_name", TINY_LMS)
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_save_load_gives_identical_outputs(tmp_path, lm_name, suffix):
    model, tok = _perturbed(lm_name)
    path = str(tmp_path / f"ckpt{suffix}")
    model.save_trainable(path)
    restored, tok2 = load_flamingo(path)
    restored.eval()
    assert restored.cfg == model.cfg
    ids, mask = encode(tok, ["words <image>a caption<EOC><image>more<EOC>"])
    vx = images(model, 1, 2)
    with torch.no_grad():
        assert torch.equal(model(ids, mask, vx).logits, restored(ids, mask, vx).logits)
    assert restored.gate_values() == model.gate_values()


def test_only_trainable_weights_are_saved(tmp_path):
    model, _ = _perturbed()
    path = str(tmp_path / "ckpt.safetensors")
    model.save_trainable(path)
    _, tensors = read_trainable(path)
    assert set(tensors) == {n for n, _ in model.named_trainable_parameters()}
    assert sum(t.numel() for t in tensors.values()) < sum(p.numel() for p in model.parameters())


def test_torch_save_file_loads_with_weights_only(tmp_path):
    model, _ = _perturbed()
    path = str(tmp_path / "ckpt.pt")
    model.save_trainable(path)
    blob = torch.load(path, weights_only=True)  # raises on any non-tensor, non-builtin object
    assert set(blob) == {"format", "flamingo_config", "state_dict"}


def test_a_pickle_with_code_in_it_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "flamingo-trainable-v1", "x": Evil()}, f, protocol=2)
    model, _ = make_model()
    with pytest.raises(pickle.UnpicklingError):
        load_trainable(model, str(path))


def test_mismatched_weights_are_named(tmp_path):
    model, _ = _perturbed()
    path = str(tmp_path / "ckpt.safetensors")
    model.save_trainable(path)
    other, _ = make_model(cross_attn_every_n_layers=2)
    with pytest.raises(ValueError, match="missing|unexpected"):
        load_trainable(other, path)
    with pytest.raises(FileNotFoundError):
        load_trainable(model, str(tmp_path / "absent.safetensors"))
