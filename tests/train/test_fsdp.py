"""Two processes, gloo on CPU: FSDP2 trains like DDP, even when one rank's batch has no image.

Rank 1 reads a shard whose first documents have no image, so in the first
update (two micro-batches) it has nothing to encode while rank 0 has: the
case in which the ranks used to run different modules and their collectives
got out of step. The losses must match a DDP run on the same data, the
gathered weights must be what the ranks' shards hold, and the FSDP checkpoint
must load in one process.
"""
from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch

from model.state import read_trainable
from shards.schema import make_key
from shards.writer import write_manifest, write_shard
from tests.train.helpers import captions, m3w_doc, run_ranks, tiny_config
from tests.train.test_ddp import free_port
from train import checkpoint
from train.dist import load_trainable_state
from train.train import make_optimizer, model_config, train

STEPS = 3
SEQ_LEN = 192  # longer than every document: each window is a whole document


def write_docs(out_dir, images: list[int]) -> None:
    """One shard of m3w documents, document d with images[d] (0 or 1) images, one caption per text."""
    caps = captions()
    docs = []
    for d, n in enumerate(images):
        texts = [caps[(d * 3 + j) % len(caps)] for j in range(n + 1)]
        docs.append(m3w_doc(make_key("doc", d), texts, [d % 12] * n))
    write_shard(str(out_dir), "m3w", 0, docs, run_id="test", validate=False)
    write_manifest(str(out_dir), "m3w", "test", {}, {})


def rank_main(rank: int, world: int, port: int, cfg, rank_shards: list[str], out: str, resume: bool) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cfg = dataclasses.replace(cfg, datasets=[dict(cfg.datasets[0], shards=rank_shards[rank])])
    res = train(cfg, resume=resume)
    model = res["model"]
    # What this rank holds: its shard of each trainable weight (FSDP) or all of it (DDP).
    local = {n: (p.to_local() if hasattr(p, "to_local") else p).detach().clone()
             for n, p in model.named_trainable_parameters()}
    torch.save({"losses": res["local_losses"], "local": local,
                "records": [r for r in res["records"] if r["kind"] == "train"]},
               os.path.join(out, f"rank{rank}.pt"))


def launch(cfg, rank_shards, out, resume: bool = False) -> list[dict]:
    os.makedirs(out, exist_ok=True)
    port = free_port()
    assert run_ranks(rank_main, [(r, 2, port, cfg, rank_shards, str(out), resume) for r in range(2)]) == [0, 0]
    return [torch.load(os.path.join(out, f"rank{r}.pt"), weights_only=True) for r in range(2)]


def loss_seq(res) -> list[float]:
    return [x["loss"]["m3w"] for x in res["losses"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fsdp")
    write_docs(tmp / "with_images", [1] * 8)
    write_docs(tmp / "first_without", [0, 0, 0, 0, 1, 1, 1, 1])
    shards = [str(tmp / "with_images"), str(tmp / "first_without")]
    datasets = [{"name": "m3w", "kind": "m3w", "shards": shards[0], "weight": 1.0,
                 "batch_size": 2, "seq_len": SEQ_LEN, "max_images": 2}]
    # shuffle_buffer=1: documents in shard order, so rank 1's first update has no image.
    base = tiny_config(tmp / "ddp", datasets, steps=STEPS, grad_accum=2, mixture="accumulate",
                       shuffle_buffer=1, ckpt_every=2, keep_ckpts=5)
    fsdp_cfg = dataclasses.replace(base, out_dir=str(tmp / "fsdp"), distributed="fsdp")
    return {"tmp": tmp, "shards": shards, "fsdp_cfg": fsdp_cfg,
            "ddp": launch(base, shards, tmp / "ddp_out"),
            "fsdp": launch(fsdp_cfg, shards, tmp / "fsdp_out")}


@pytest.mark.slow   # ~45 with the shared two-process runs s; `make test` runs it with CI set (pyproject.toml markers)
def test_fsdp_matches_ddp_with_an_imageless_rank(runs):
    ddp, fsdp = runs["ddp"], runs["fsdp"]
    for res in ddp + fsdp:
        assert [x["step"] for x in res["losses"]] == list(range(1, STEPS + 1))
        assert all(math.isfinite(v) for v in loss_seq(res))
    # Each rank its own data (rank 1's first update is text only).
    assert loss_seq(fsdp[0])[0] != loss_seq(fsdp[1])[0]
    for r in range(2):
        assert loss_seq(fsdp[r])[0] == loss_seq(ddp[r])[0]  # same initial weights, same data
        assert loss_seq(fsdp[r]) == pytest.approx(loss_seq(ddp[r]), abs=1e-5, rel=0)
    # The gates are gathered for the log, and trained.
    gates = fsdp[0]["records"][-1]["gates"]
    assert gates == pytest.approx(ddp[0]["records"][-1]["gates"], abs=1e-5)
    assert any(v != 0 for v in gates.values())


@pytest.mark.slow   # ~45 with the shared two-process runs s; `make test` runs it with CI set (pyproject.toml markers)
def test_gathered_weights_are_the_ranks_shards_and_match_ddp(runs):
    tmp, (f0, f1), (d0, _) = runs["tmp"], runs["fsdp"], runs["ddp"]
    _, final = read_trainable(str(tmp / "fsdp" / "final.safetensors"))
    ckpt = checkpoint.load(checkpoint.path_for(str(tmp / "fsdp"), STEPS))
    assert final.keys() == ckpt["weights"].keys() == d0["local"].keys()
    for n, full in final.items():
        assert torch.equal(ckpt["weights"][n], full)
        # FSDP2 shards dim 0 (rank 1 may get fewer rows, or none): the shards, stacked, are the weight.
        assert f0["local"][n].shape[0] < full.shape[0] or full.shape[0] == 1
        assert torch.equal(torch.cat([f0["local"][n], f1["local"][n]]), full)
        torch.testing.assert_close(full, d0["local"][n], atol=1e-5, rtol=0)
    assert final["lm.transformer.h.0.gated.attn_gate"].shape == (1,)


@pytest.mark.slow   # ~45 with the shared two-process runs s; `make test` runs it with CI set (pyproject.toml markers)
def test_fsdp_checkpoint_loads_in_one_process(runs):
    tmp = runs["tmp"]
    fsdp = checkpoint.load(checkpoint.path_for(str(tmp / "fsdp"), STEPS))
    ddp = checkpoint.load(checkpoint.path_for(str(tmp / "ddp"), STEPS))
    # The same format as DDP's: optimiser state numbered like optimizer.state_dict().
    assert fsdp["optimizer"]["param_groups"] == ddp["optimizer"]["param_groups"]
    assert fsdp["optimizer"]["state"].keys() == ddp["optimizer"]["state"].keys()
    from model.build import build_flamingo
    cfg = runs["fsdp_cfg"]
    model, _ = build_flamingo(model_config(cfg))
    optimizer = make_optimizer(model, cfg)
    load_trainable_state(model, optimizer, fsdp["weights"], fsdp["optimizer"])
    for n, p in model.named_trainable_parameters():
        assert torch.equal(p.detach(), fsdp["weights"][n])
    state = optimizer.state_dict()["state"]
    for i, st in fsdp["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(state[i][k], v), (i, k)
            torch.testing.assert_close(v, ddp["optimizer"]["state"][i][k], atol=1e-5, rtol=1e-4)


@pytest.mark.slow   # ~45 with the shared two-process runs s; `make test` runs it with CI set (pyproject.toml markers)
def test_fsdp_resume_is_exact(runs):
    """Resumed under FSDP from the step-2 checkpoint, step 3 has the same loss as the run never stopped."""
    tmp, cfg = runs["tmp"], runs["fsdp_cfg"]
    resumed_dir = tmp / "fsdp_resumed"
    resumed_dir.mkdir()
    src = checkpoint.path_for(str(tmp / "fsdp"), 2)
    os.link(src, checkpoint.path_for(str(resumed_dir), 2))
    res = launch(dataclasses.replace(cfg, out_dir=str(resumed_dir)), runs["shards"], tmp / "resume_out",
                 resume=True)
    for r in range(2):
        assert [x["step"] for x in res[r]["losses"]] == [3]
        assert loss_seq(res[r]) == loss_seq(runs["fsdp"][r])[2:]
    _, a = read_trainable(str(resumed_dir / "final.safetensors"))
    _, b = read_trainable(str(tmp / "fsdp" / "final.safetensors"))
    assert all(torch.equal(a[n], b[n]) for n in b)


# ---------------------------------------------------------------- the two model changes FSDP needs

def test_uniform_compute_runs_every_module_and_changes_no_output():
    """FlamingoModel.uniform_compute (set under FSDP): a batch with nothing to encode still runs the
    vision encoder, resampler and cross-attention, and loss, logits and the other gradients stay the same."""
    from tests.model.model_helpers import encode, make_model
    model, tok = make_model(gates=0.5)
    model.train()
    ids, mask = encode(tok, ["no picture here, just text", "short"])
    labels = ids.masked_fill(mask == 0, -100)
    s = model.image_size
    padding_only = torch.zeros(2, 1, 1, 3, s, s)  # what the loader gives a batch without images
    calls = []
    model.resampler.register_forward_hook(lambda *a: calls.append("resampler"))
    model.vision.register_forward_hook(lambda *a: calls.append("vision"))
    for vision_x in (None, padding_only):
        results = []
        for uniform in (False, True):
            model.uniform_compute = uniform
            model.zero_grad(set_to_none=True)
            calls.clear()
            out = model(ids, mask, vision_x, labels=labels)
            out.loss.backward()
            grads = {n: p.grad for n, p in model.named_trainable_parameters()}
            results.append((out.logits.detach(), out.loss.detach(), grads, list(calls)))
        (logits0, loss0, g0, calls0), (logits1, loss1, g1, calls1) = results
        assert calls0 == [] and sorted(calls1) == ["resampler", "vision"]
        assert torch.equal(logits0, logits1) and torch.equal(loss0, loss1)
        for n, g in g1.items():
            assert g is not None, n  # every trainable weight gets a gradient (zero if unused)
            if g0[n] is None:
                assert not g.any(), n
            else:
                assert torch.equal(g, g0[n]), n
    model.uniform_compute = False


def test_gates_have_shape_1_and_old_0d_gates_still_load(tmp_path):
    from model.build import build_flamingo
    from model.config import FlamingoConfig
    from model.state import FORMAT
    cfg = FlamingoConfig.tiny()
    model, _ = build_flamingo(cfg)
    gates = [n for n, _ in model.named_trainable_parameters() if n.endswith("_gate")]
    assert gates and all(dict(model.named_parameters())[n].shape == (1,) for n in gates)
    # A file and a checkpoint as written when the gates were 0-d.
    old = {n: (torch.tensor(0.25) if n in gates else p.detach().clone())
           for n, p in model.named_trainable_parameters()}
    torch.save({"format": FORMAT, "flamingo_config": cfg.to_dict(), "state_dict": old}, tmp_path / "old.pt")
    model.load_trainable(str(tmp_path / "old.pt"))
    assert list(model.gate_values().values()) == pytest.approx([math.tanh(0.25)] * len(gates))
    model.load_state_dict({n: old[n] for n in gates}, strict=False)  # nn.Module loading too
    optimizer = torch.optim.AdamW(model.trainable_parameters())
    names = [n for n, _ in model.named_trainable_parameters()]
    state = {i: {"step": torch.tensor(3.0), "exp_avg": torch.full_like(old[n], 0.1),
                 "exp_avg_sq": torch.full_like(old[n], 0.01)} for i, n in enumerate(names)}
    groups = [dict(optimizer.state_dict()["param_groups"][0])]
    load_trainable_state(model, optimizer, old, {"state": state, "param_groups": groups})
    for n, p in model.named_trainable_parameters():
        assert optimizer.state[p]["exp_avg"].shape == p.shape
    model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    optimizer.step()  # the old 0-d moments, reshaped, take a step
