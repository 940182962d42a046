"""Two processes, gloo on CPU: DDP keeps the replicas identical while each rank reads its own data."""
from __future__ import annotations

import math
import os
import socket

import torch

from tests.train.helpers import run_ranks, tiny_config, write_m3w, write_pairs
from train.train import train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(rank: int, world: int, port: int, cfg, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    res = train(cfg)
    torch.save({"losses": res["local_losses"],
                "params": {n: p.detach().clone() for n, p in res["model"].named_trainable_parameters()}},
               os.path.join(out, f"rank{rank}.pt"))


def test_two_process_gloo_ddp(tmp_path):
    write_m3w(tmp_path / "m3w", n_docs=8, images_per_doc=2, sentences=2)
    write_pairs(tmp_path / "pairs", n=8)
    datasets = [{"name": "m3w", "kind": "m3w", "shards": str(tmp_path / "m3w"), "weight": 1.0,
                 "batch_size": 2, "seq_len": 64},
                {"name": "pairs", "kind": "pairs", "shards": str(tmp_path / "pairs"), "weight": 0.2,
                 "batch_size": 2, "seq_len": 32}]
    cfg = tiny_config(tmp_path / "run", datasets, steps=4, grad_accum=2, mixture="accumulate")
    port = free_port()
    assert run_ranks(rank_main, [(r, 2, port, cfg, str(tmp_path)) for r in range(2)]) == [0, 0]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert [x["step"] for x in r0["losses"]] == [1, 2, 3, 4]
    for res in (r0, r1):
        assert all(math.isfinite(v) for x in res["losses"] for v in x["loss"].values())
    # Different data per rank (split by node), yet one model: every trainable weight identical.
    assert r0["losses"][0]["loss"] != r1["losses"][0]["loss"]
    assert r0["params"].keys() == r1["params"].keys()
    assert all(torch.equal(r0["params"][n], r1["params"][n]) for n in r0["params"])
    # And training moved them (the gates start at exactly 0).
    assert any(float(v.abs().max()) > 0 for n, v in r0["params"].items() if n.endswith("_gate"))
    assert (tmp_path / "run" / "ckpt-00000004.pt").exists()
