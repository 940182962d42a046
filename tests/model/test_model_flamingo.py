"""The wrapped LM: exact at zero gates, frozen where it should be, video, caches, loading."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, CLIPVisionModel

from model.build import build_flamingo
from model.config import FlamingoConfig
from model.lm import FlamingoLayer, build_lm, find_decoder_layers
from model.vision import build_vision_encoder, tiny_clip_config
from tests.model.model_helpers import TINY_LMS, encode, images, make_model

TEXTS = ["A page.<EOC><image>first caption<EOC><image>second<EOC>", "<image>one picture only<EOC>"]


def bare_lm(lm_name: str, seed: int = 0):
    """The LM exactly as build_flamingo builds it, before any wrapping."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm, _ = build_lm(lm_name)
    return lm.eval()


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_zero_gates_give_the_bare_lm_logits_exactly(lm_name):
    model, tok = make_model(lm_name)
    ref = bare_lm(lm_name)
    ids, mask = encode(tok, ["plain text, no special tokens", "short"])
    new_ids = [model.image_token_id, model.eoc_token_id]
    keep = [i for i in range(ref.config.vocab_size) if i not in new_ids]
    with torch.no_grad():
        ours = model(ids, mask).logits
        theirs = ref(input_ids=ids, attention_mask=mask).logits
        assert torch.equal(ours[..., keep], theirs[..., keep])
        # With <image> tokens: images or no images, the same logits.
        ids, mask = encode(tok, TEXTS)
        with_images = model(ids, mask, images(model, 2, 2)).logits
        without = model(ids, mask, None).logits
    assert torch.equal(with_images, without)


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_every_architecture_wraps_every_nth_layer(lm_name):
    for n, expect in ((1, [0, 1, 2, 3]), (2, [1, 3]), (4, [3])):
        model, _ = make_model(lm_name, cross_attn_every_n_layers=n)
        layers = find_decoder_layers(model.lm)
        assert len(layers) == model.lm.config.num_hidden_layers == 4
        assert sorted(model.xattn_layers) == expect
        assert [i for i, layer in enumerate(layers) if isinstance(layer, FlamingoLayer)] == expect


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_gradients_reach_only_trainable_parameters(lm_name):
    model, tok = make_model(lm_name, gates=0.5)
    model.train()
    ids, mask = encode(tok, TEXTS)
    labels = ids.masked_fill(mask == 0, -100)
    out = model(ids, mask, images(model, 2, 2), labels=labels)
    out.loss.backward()
    trainable = {n for n, _ in model.named_trainable_parameters()}
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name
        else:
            assert p.grad is None, name
    # Trainable = resampler + gated blocks + the two new token rows (in and, if untied, out).
    lm_trainable = {n for n in trainable if n.startswith("lm.") and ".gated." not in n}
    assert all(n.endswith(".extra") for n in lm_trainable)
    tied = model.lm.get_output_embeddings().weight is model.lm.get_input_embeddings().weight
    assert len(lm_trainable) == (1 if tied else 2)
    assert model.embed.extra.shape[0] == 2
    assert not any(n.startswith("vision.") for n in trainable)


def test_loss_is_mean_shifted_cross_entropy():
    model, tok = make_model()
    ids, mask = encode(tok, TEXTS)
    labels = ids.masked_fill(mask == 0, -100)
    out = model(ids, mask, images(model, 2, 2), labels=labels)
    logits, target = out.logits[:, :-1], labels[:, 1:]
    keep = target != -100
    expect = torch.nn.functional.cross_entropy(logits[keep], target[keep])
    torch.testing.assert_close(out.loss, expect)


def test_video_input_uses_every_frame_and_temporal_embeddings():
    model, tok = make_model(gates=0.5)
    ids, mask = encode(tok, ["<image>a clip of a dog<EOC>"])
    vx = images(model, 1, 1, frames=4)
    with torch.no_grad():
        tokens = model.encode_vision(vx)
        assert tokens.shape == (1, 1, 64, model.vision.feature_dim)
        base = model(ids, mask, vx).logits
        bumped = vx.clone()
        bumped[0, 0, 3] += 1.0  # only the last frame
        assert not torch.allclose(model(ids, mask, bumped).logits, base)
        # Frame order matters: the temporal embeddings tell frames apart.
        model.resampler.temporal_embeddings.normal_()
        swapped = torch.cat([vx[:, :, 2:], vx[:, :, :2]], dim=2)
        assert not torch.allclose(model.encode_vision(swapped), model.encode_vision(vx))
    with pytest.raises(ValueError, match="temporal embeddings"):
        model.encode_vision(images(model, 1, 1, frames=9))


def test_several_images_per_sequence_in_a_padded_batch():
    model, tok = make_model(gates=0.5)
    ids, mask = encode(tok, TEXTS)
    vx = images(model, 2, 2)
    with torch.no_grad():
        batched = model(ids, mask, vx).logits
        # Row 1 alone (its padding image dropped) gives the same logits.
        ids1, mask1 = encode(tok, TEXTS[1:])
        alone = model(ids1, mask1, vx[1:, :1]).logits
    n = ids1.shape[1]
    torch.testing.assert_close(batched[1, :n], alone[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_kv_cache_steps_match_the_full_forward(lm_name):
    model, tok = make_model(lm_name, gates=0.5)
    ids, mask = encode(tok, ["Pets!<EOC><image>My puppy.<EOC><image>My cat looks dignified."])
    vx = images(model, 1, 2)
    second = (ids[0] == model.image_token_id).nonzero()[1].item()
    split = second - 3  # the cached prefix holds image 1; image 2 arrives in the steps
    with torch.no_grad():
        full = model(ids, mask, vx).logits
        out = model(ids[:, :split], mask[:, :split], vx, use_cache=True)
        steps = [out.logits]
        for t in range(split, ids.shape[1]):
            out = model(ids[:, t:t + 1], mask[:, :t + 1], past_key_values=out.past_key_values,
                        use_cache=True)
            steps.append(out.logits)
    assert out.past_key_values.image_count.tolist() == [2]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)


def _counting(fn, count, i):
    def wrapped(*args, **kwargs):
        count[i] += 1
        return fn(*args, **kwargs)
    return wrapped


def test_gradient_checkpointing_gives_the_same_gradients():
    grads, calls = [], []
    for ckpt in (False, True):
        model, tok = make_model(gates=0.5, gradient_checkpointing=ckpt)
        model.train()
        count = [0, 0]  # forward runs of the first gated block / of the GPT-2 layer it precedes
        layer = model.xattn_layers[0]
        # (Forward hooks do not fire on a checkpoint's recompute, and transformers
        # checkpoints the class's forward: count in forward, inside the layer.)
        for i, mod in enumerate((layer.gated, layer.decoder_layer.mlp)):
            mod.forward = _counting(mod.forward, count, i)
        ids, mask = encode(tok, TEXTS)
        model(ids, mask, images(model, 2, 2), labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_trainable_parameters()})
        calls.append(count)
    assert calls == [[1, 1], [2, 2]]  # checkpointed: each recomputed once in the backward pass
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_preprocessing_facts_and_gate_values():
    model, _ = make_model()
    assert model.image_size == 32
    assert len(model.image_mean) == len(model.image_std) == 3
    gates = model.gate_values()
    assert sorted(gates) == sorted(f"{i}.{g}" for i in range(4) for g in ("attn", "ff"))
    assert set(gates.values()) == {0.0}


def test_local_checkpoints_load_without_downloads(tmp_path):
    # An LM and tokenizer, and a CLIP vision tower, written the way real ones are.
    lm, tok = build_lm("tiny-llama")
    lm.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    clip = CLIPVisionModel(tiny_clip_config())
    clip.save_pretrained(tmp_path / "clip")
    (tmp_path / "clip" / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}')
    cfg = FlamingoConfig.tiny(str(tmp_path / "lm"), vision=str(tmp_path / "clip"),
                              vision_feature_layer=-2)
    model, tok2 = build_flamingo(cfg)
    assert model.image_mean == (0.5, 0.5, 0.5) and model.image_std == (0.25, 0.25, 0.25)
    assert tok2("<image>")["input_ids"][-1] == model.image_token_id
    ref = AutoModelForCausalLM.from_pretrained(tmp_path / "lm").eval()
    ids, mask = encode(tok2, ["just words"])
    with torch.no_grad():
        torch.testing.assert_close(model(ids, mask).logits[..., :ref.config.vocab_size],
                                   ref(input_ids=ids, attention_mask=mask).logits, rtol=0, atol=0)
        model(*encode(tok2, TEXTS), images(model, 2, 2))


def test_missing_local_paths_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_flamingo(FlamingoConfig.tiny(str(tmp_path / "nope")))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_vision_encoder(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown tiny LM"):
        build_lm("tiny-mamba")


def test_building_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = build_flamingo(FlamingoConfig.tiny())
    after = torch.rand(1)
    b, _ = build_flamingo(FlamingoConfig.tiny())
    assert torch.equal(before, after)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), n


def test_bf16_frozen_parts_stay_exact_at_zero_gates_and_train_under_autocast():
    model, tok = make_model(frozen_dtype="bfloat16")
    ref = bare_lm("tiny-gpt2").to(torch.bfloat16)
    ids, mask = encode(tok, ["plain words only"])
    keep = slice(0, ref.config.vocab_size)
    with torch.no_grad():
        assert torch.equal(model(ids, mask, images(model, 1, 1)).logits[..., keep],
                           ref(input_ids=ids, attention_mask=mask).logits)
    model.train()
    ids, mask = encode(tok, TEXTS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, mask, images(model, 2, 2), labels=ids)
    out.loss.backward()
    assert all(p.dtype == torch.float32 for p in model.trainable_parameters())
    assert model.resampler.latents.grad is not None


def test_config_round_trips_and_rejects_unknown_fields():
    cfg = FlamingoConfig.tiny("tiny-opt", cross_attn_every_n_layers=2)
    assert FlamingoConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        FlamingoConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        FlamingoConfig(cross_attn_every_n_layers=0)


def test_package_exports_the_trainer_interface():
    import model
    assert model.build_flamingo is build_flamingo
    assert model.FlamingoConfig is FlamingoConfig
    for name in model.__all__:
        assert getattr(model, name) is not None
