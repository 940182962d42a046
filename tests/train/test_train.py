"""The training loop: the loss falls end to end, the mixture honours its weights in both modes."""
from __future__ import annotations

import collections
import math

import pytest
import torch

from model.build import build_flamingo
from model.state import load_flamingo
from tests.train.helpers import tiny_config, write_m3w, write_pairs
from train import checkpoint
from train.mixture import build_sources, choose
from train.train import lr_at, make_optimizer, model_config, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    write_m3w(root / "m3w", n_docs=12, images_per_doc=3, sentences=2)
    write_pairs(root / "pairs", n=16)
    return root


def m3w_spec(shards, **kw):
    return dict({"name": "m3w", "kind": "m3w", "shards": str(shards / "m3w"), "weight": 1.0,
                 "batch_size": 4, "seq_len": 96, "max_images": 5}, **kw)


def pairs_spec(shards, **kw):
    return dict({"name": "pairs", "kind": "pairs", "shards": str(shards / "pairs"), "weight": 0.2,
                 "batch_size": 4, "seq_len": 32}, **kw)


def test_m3w_shards_to_training_loss_falls(shards, tmp_path):
    cfg = tiny_config(tmp_path / "run", [m3w_spec(shards)], steps=40, log_every=5, ckpt_every=20,
                      eval_every=20, holdout=0.2, model={"preset": "tiny", "lm": "tiny-gpt2",
                                                         "freeze_lm": False})
    res = train(cfg)
    recs = [r for r in res["records"] if r["kind"] == "train"]
    losses = [r["loss"]["m3w"] for r in recs]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert res["local_losses"][0]["loss"]["m3w"] > 5.0  # starts near ln(vocab) = ln 260 = 5.56
    assert losses[-1] < losses[0] - 1.5, losses         # and falls clearly
    assert set(recs[-1]["gates"]) == {f"{i}.{k}" for i in range(4) for k in ("attn", "ff")}
    assert recs[-1]["samples_per_s"] > 0 and recs[-1]["tokens_per_s"] > recs[-1]["samples_per_s"]
    evals = [r for r in res["records"] if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 20, 40] and all(math.isfinite(r["eval_loss"]["m3w"]) for r in evals)
    run = tmp_path / "run"
    assert (run / "loss.png").stat().st_size > 1000
    assert [p.rsplit("/", 1)[1] for p in checkpoint.list_checkpoints(str(run))] == ["ckpt-00000020.pt",
                                                                                    "ckpt-00000040.pt"]
    state = checkpoint.load(str(run / "ckpt-00000040.pt"))  # weights_only=True
    assert state["step"] == 40 and state["data"][0]["m3w"]["consumed"] == 40
    model, _ = load_flamingo(str(run / "final.safetensors"))
    for name, p in model.named_trainable_parameters():
        assert torch.equal(p, dict(res["model"].named_parameters())[name])


def test_accumulate_loss_is_the_weighted_sum_of_dataset_losses(shards, tmp_path):
    datasets = [m3w_spec(shards, batch_size=2, seq_len=64), pairs_spec(shards, batch_size=2, weight=0.2)]
    cfg = tiny_config(tmp_path / "run", datasets, steps=1, grad_clip=0.0, mixture="accumulate")
    res = train(cfg)
    got = dict(res["model"].named_trainable_parameters())

    def one_update(weights):
        model, tok = build_flamingo(model_config(cfg))
        model.train()
        opt = make_optimizer(model, cfg)
        for g in opt.param_groups:
            g["lr"] = lr_at(0, cfg)
        losses = []
        for src, w in zip(build_sources(cfg, tok, model, 0, 1), weights):
            b = src.next()
            out = model(b["input_ids"], b["attention_mask"], b["vision_x"], labels=b["labels"])
            (out.loss * w).backward()
            losses.append(float(out.loss.detach()))
        opt.step()
        return dict(model.named_trainable_parameters()), losses

    want, losses = one_update([1.0, 0.2])
    assert all(torch.equal(got[n], want[n]) for n in want)
    unweighted, _ = one_update([1.0, 1.0])
    assert not all(torch.equal(got[n], unweighted[n]) for n in want)
    (rec,) = [r for r in res["records"] if r["kind"] == "train"]
    assert rec["loss"] == {"m3w": losses[0], "pairs": losses[1]}
    assert rec["loss_weighted"] == pytest.approx(losses[0] + 0.2 * losses[1], rel=1e-12)


def test_sample_mode_draws_datasets_in_proportion_to_weight(shards, tmp_path):
    datasets = [m3w_spec(shards, batch_size=2, seq_len=64, weight=3.0), pairs_spec(shards, batch_size=2, weight=1.0)]
    cfg = tiny_config(tmp_path / "run", datasets, steps=24, mixture="sample")
    res = train(cfg)
    expect = collections.Counter(choose_names(cfg, 24))
    assert res["consumed"] == {"m3w": expect["m3w"], "pairs": expect["pairs"]}
    assert 0 < expect["pairs"] < expect["m3w"]
    per_step = [set(r["loss"]) for r in res["records"] if r["kind"] == "train"]
    assert per_step == [{n} for n in choose_names(cfg, 24)]
    # The draw itself, over many steps: 3:1.
    counts = collections.Counter(choose_names(cfg, 4000))
    assert abs(counts["m3w"] / 4000 - 0.75) < 0.03


def choose_names(cfg, steps):
    class S:
        def __init__(self, d):
            self.name, self.weight = d["name"], d["weight"]
    sources = [S(d) for d in cfg.datasets]
    return [choose(sources, "sample", cfg.seed, step)[0].name for step in range(steps)]


def test_missing_shards_tell_the_user_to_run_make_m3w(tmp_path):
    cfg = tiny_config(tmp_path / "run", [{"name": "m3w", "kind": "m3w", "shards": str(tmp_path / "nope"),
                                          "weight": 1.0, "batch_size": 2}])
    with pytest.raises(SystemExit, match="make m3w"):
        train(cfg)


def test_every_dataset_has_its_held_out_loss_and_loss_png_names_them(shards, tmp_path):
    from train.log import RunLog

    cfg = tiny_config(tmp_path / "run", [m3w_spec(shards), pairs_spec(shards, holdout=0.25)],
                      steps=4, log_every=2, ckpt_every=4, eval_every=2, holdout=0.2)
    res = train(cfg)
    evals = [r for r in res["records"] if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert all(set(r["eval_loss"]) == {"m3w", "pairs"} for r in evals)
    assert all(math.isfinite(v) for r in evals for v in r["eval_loss"].values())
    log = RunLog(str(tmp_path / "run"), resume_step=4)
    ax = log.figure().axes[0]
    assert ax.get_legend_handles_labels()[1] == ["m3w: train", "m3w: held-out",
                                                 "pairs: train", "pairs: held-out"]
    log.close()


def test_held_out_keys_never_reach_training(shards):
    from train.data import in_holdout
    from train.mixture import build_evals, build_sources, holdout_of

    cfg = tiny_config("unused", [m3w_spec(shards), pairs_spec(shards, holdout=0.5),
                                 pairs_spec(shards, name="no-holdout", holdout=0.0)], holdout=0.3)
    assert [holdout_of(cfg, i) for i in range(3)] == [0.3, 0.5, 0.0]
    from model.build import build_flamingo
    from train.train import model_config

    model, tok = build_flamingo(model_config(cfg))
    evals = build_evals(cfg, tok, model)
    assert set(evals) == {"m3w", "pairs"}
    held = {s["__key__"] for s in evals["pairs"]._raw(0, 1)}
    trained = {s["__key__"] for _, s in zip(range(16), build_sources(cfg, tok, model, 0, 1)[1].dataset._raw(0, 1))}
    assert held and trained and not held & trained
    assert all(in_holdout(k, 0.5) for k in held)
