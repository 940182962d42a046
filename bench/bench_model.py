"""Train-step speed of the Flamingo model (a benchmark, not a test).

    .venv/bin/python bench/bench_model.py [--reps N] [--skip-modules] [--gpu-path-smoke]
                                          [--openflamingo-helpers PATH/TO/helpers.py]

1. CPU, the tiny config (FlamingoConfig.tiny(): 4-layer GPT-2 of width 64, a
   2-layer 32 px ViT, blocks before every layer): forward + backward time of
   one train step, and in the same run the same step on the LM alone (the
   same frozen LM and token ids, trainable new-token rows, no vision, no
   gated blocks), and the ratio.
2. Ours vs OpenFlamingo's modules at the same shapes: Perceiver Resampler +
   a stack of GATED XATTN-DENSE blocks, forward + backward, same weights,
   outputs checked equal first. OpenFlamingo itself does not install next to
   this project (open_flamingo 2.0.1 pins torch==2.0.1 and pulls open_clip),
   so unless --openflamingo-helpers points at its src/helpers.py (which needs
   einops and einops_exts), the comparison is against OF_* below: A
   RE-IMPLEMENTATION of open_flamingo 2.0.1's src/helpers.py
   (PerceiverResampler, MaskedCrossAttention, GatedCrossAttentionBlock):
   einsum attention, the max-subtracted softmax, and their masking with a
   full [T_txt, T_img * n] mask built in every layer; einops calls replaced
   by the equivalent view/permute/expand. In the session that wrote it, it
   was checked numerically equal to the real helpers.py.
3. GPU (only when torch.cuda.is_available()): the same train step for a
   ~1.1B-parameter Llama-architecture LM (TinyLlama's shape, random weights)
   with a ViT-L/14 at 224 px, bf16, reporting tokens/s and MFU (FLOPs
   counted with torch's FlopCounterMode over one step; the peak comes from
   the device name or FLAMINGO_PEAK_TFLOPS), and the module comparison at
   OpenFlamingo-3B-like shapes. --gpu-path-smoke runs that code path on the
   CPU at toy sizes, to check it runs; its figures mean nothing.

Times are the best of N rounds in which every candidate runs once in turn,
so a machine shared with other work disturbs all of them alike, and the
minimum is what other work moves least.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import einsum, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.build import build_flamingo  # noqa: E402
from model.config import FlamingoConfig  # noqa: E402
from model.masking import image_index, media_mask  # noqa: E402
from model.resampler import PerceiverResampler  # noqa: E402
from model.xattn import GatedCrossAttentionBlock  # noqa: E402
from shards.schema import serialize_interleaved  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def race(steps: dict, reps: int, warmup: int = 2, device: str = "cpu") -> dict[str, float]:
    """Best seconds per call of each step over interleaved rounds (as timeit: the
    minimum is the figure least moved by other work on the machine)."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times = {name: [] for name in steps}
    for _ in range(reps):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


# ---------------------------------------------------------------- 1. tiny config on CPU


def tiny_batch(model, tok, b=8, t=64, images_per_row=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = ["a", "dog", "sits", "in", "the", "grass", "my", "cat", "looks", "dignified", "photo"]
    texts = []
    for _ in range(b):
        chunks = []
        for _ in range(images_per_row):
            chunks.append(None)
            chunks.append(" ".join(words[int(i)] for i in torch.randint(len(words), (12,), generator=g)))
        texts.append(serialize_interleaved(chunks))
    tok.padding_side = "right"
    enc = tok(texts, return_tensors="pt", padding="max_length", truncation=True, max_length=t)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    n_img = int((ids == model.image_token_id).sum(1).max())
    s = model.image_size
    vx = torch.randn(b, n_img, 1, 3, s, s, generator=g)
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, vx, labels


def bench_tiny(reps: int) -> None:
    model, tok = build_flamingo(FlamingoConfig.tiny())
    model.train()
    ids, mask, vx, labels = tiny_batch(model, tok)

    def flamingo_step():
        model.zero_grad(set_to_none=True)
        model(ids, mask, vx, labels=labels).loss.backward()

    def lm_alone_step():
        # model.lm called directly: its FlamingoLayers pass straight to the
        # decoder layers (no blocks); the new-token rows keep it trainable.
        model.zero_grad(set_to_none=True)
        logits = model.lm(input_ids=ids, attention_mask=mask).logits
        F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100).backward()

    t = race({"flamingo": flamingo_step, "lm": lm_alone_step}, reps)
    b, n = ids.shape
    print(f"tiny config on CPU ({torch.get_num_threads()} threads): batch {b} x {n} tokens, "
          f"{vx.shape[1]} images of {model.image_size}px per row; forward+backward per step")
    print(f"  flamingo (vision + resampler + {len(model.xattn_layers)} gated blocks + LM): {t['flamingo'] * 1e3:8.2f} ms")
    print(f"  LM alone (blocks removed, no vision):                   {t['lm'] * 1e3:8.2f} ms")
    print(f"  ratio flamingo / LM alone: {t['flamingo'] / t['lm']:.2f}x")


# ---------------------------------------------------------------- 2. OpenFlamingo re-implementation
# A RE-IMPLEMENTATION of open_flamingo 2.0.1 src/helpers.py for comparison only
# (their code, not ours; einops replaced by torch view/permute/expand).


def OF_FeedForward(dim, mult=4):
    inner_dim = int(dim * mult)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner_dim, bias=False), nn.GELU(),
                         nn.Linear(inner_dim, dim, bias=False))


def _split_heads(t, h):  # "... n (h d) -> ... h n d"
    return t.unflatten(-1, (h, -1)).transpose(-2, -3)


def _merge_heads(t):  # "... h n d -> ... n (h d)"
    return t.transpose(-2, -3).flatten(-2)


class OF_PerceiverAttention(nn.Module):
    def __init__(self, *, dim, dim_head=64, heads=8):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        inner_dim = dim_head * heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x, latents):
        x = self.norm_media(x)
        latents = self.norm_latents(latents)
        h = self.heads
        q = self.to_q(latents)
        kv_input = torch.cat((x, latents), dim=-2)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)
        q, k, v = (_split_heads(t, h) for t in (q, k, v))   # b t n (h d) -> b t h n d
        q = q * self.scale
        sim = einsum("... i d, ... j d  -> ... i j", q, k)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        out = einsum("... i j, ... j d -> ... i d", attn, v)
        return self.to_out(_merge_heads(out))


class OF_PerceiverResampler(nn.Module):
    def __init__(self, *, dim, depth=6, dim_head=64, heads=8, num_latents=64, max_num_frames=None,
                 ff_mult=4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.frame_embs = nn.Parameter(torch.randn(max_num_frames, dim)) if max_num_frames else None
        self.layers = nn.ModuleList([
            nn.ModuleList([OF_PerceiverAttention(dim=dim, dim_head=dim_head, heads=heads),
                           OF_FeedForward(dim=dim, mult=ff_mult)]) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        b, T, F_, v = x.shape[:4]
        if self.frame_embs is not None:
            x = x + self.frame_embs[:F_][None, None, :, None, :].expand(b, T, F_, v, -1)
        x = x.flatten(2, 3)  # b T F v d -> b T (F v) d
        latents = self.latents[None, None].expand(b, T, -1, -1)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


class OF_MaskedCrossAttention(nn.Module):
    def __init__(self, *, dim, dim_visual, dim_head=64, heads=8, only_attend_immediate_media=True):
        super().__init__()
        self.scale = dim_head ** -0.5
        self.heads = heads
        inner_dim = dim_head * heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)
        self.only_attend_immediate_media = only_attend_immediate_media

    def forward(self, x, media, media_locations=None):
        _, T_img, n = media.shape[:3]
        h = self.heads
        x = self.norm(x)
        q = self.to_q(x)
        media = media.flatten(1, 2)  # b t n d -> b (t n) d
        k, v = self.to_kv(media).chunk(2, dim=-1)
        q, k, v = (_split_heads(t, h) for t in (q, k, v))
        q = q * self.scale
        sim = einsum("... i d, ... j d -> ... i j", q, k)
        if media_locations is not None:
            media_time = torch.arange(T_img, device=x.device) + 1
            text_time = media_locations.cumsum(dim=-1)
            mask_op = torch.eq if self.only_attend_immediate_media else torch.ge
            text_to_media_mask = mask_op(text_time[:, None, :, None],
                                         media_time.repeat_interleave(n)[None, None, None, :])
            sim = sim.masked_fill(~text_to_media_mask, -torch.finfo(sim.dtype).max)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        if media_locations is not None and self.only_attend_immediate_media:
            text_without_media_mask = (text_time == 0)[:, None, :, None]
            attn = attn.masked_fill(text_without_media_mask, 0.0)
        out = einsum("... i j, ... j d -> ... i d", attn, v)
        return self.to_out(_merge_heads(out))


class OF_GatedCrossAttentionBlock(nn.Module):
    def __init__(self, *, dim, dim_visual, dim_head=64, heads=8, ff_mult=4,
                 only_attend_immediate_media=True):
        super().__init__()
        self.attn = OF_MaskedCrossAttention(dim=dim, dim_visual=dim_visual, dim_head=dim_head, heads=heads,
                                            only_attend_immediate_media=only_attend_immediate_media)
        self.attn_gate = nn.Parameter(torch.tensor([0.0]))
        self.ff = OF_FeedForward(dim, mult=ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x, media, media_locations=None):
        x = self.attn(x, media, media_locations=media_locations) * self.attn_gate.tanh() + x
        x = self.ff(x) * self.ff_gate.tanh() + x
        return x


def load_openflamingo_helpers(path: str):
    """The real open_flamingo src/helpers.py, loaded on its own (needs einops, einops_exts)."""
    spec = importlib.util.spec_from_file_location("open_flamingo_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- 2. the module race

IMG = 7  # the <image> id in the synthetic token ids


def module_shapes(name: str) -> dict:
    if name == "tiny":  # FlamingoConfig.tiny() on the tiny GPT-2 and ViT
        return dict(b=8, t_txt=64, t_img=2, frames=1, patches=16, d_visual=64, d_text=64, latents=64,
                    depth=2, heads=4, dim_head=16, ff_mult=2, blocks=4)
    if name == "medium":  # OpenFlamingo's head sizes, widths cut to fit a CPU step
        return dict(b=4, t_txt=256, t_img=5, frames=1, patches=64, d_visual=256, d_text=512, latents=64,
                    depth=2, heads=8, dim_head=64, ff_mult=4, blocks=4)
    if name == "of3b":  # OpenFlamingo-3B: ViT-L/14 (256 patches, 1024), MPT-1B width 2048, M3W 256 tokens x 5 images
        return dict(b=8, t_txt=256, t_img=5, frames=1, patches=256, d_visual=1024, d_text=2048, latents=64,
                    depth=6, heads=8, dim_head=64, ff_mult=4, blocks=8)
    raise ValueError(name)


def build_module_pair(s: dict, of_module=None):
    ours_r = PerceiverResampler(s["d_visual"], depth=s["depth"], heads=s["heads"], dim_head=s["dim_head"],
                                num_latents=s["latents"], max_frames=8, ff_mult=s["ff_mult"])
    ours_b = nn.ModuleList(GatedCrossAttentionBlock(s["d_text"], s["d_visual"], heads=s["heads"],
                                                    dim_head=s["dim_head"], ff_mult=s["ff_mult"])
                           for _ in range(s["blocks"]))
    if of_module is not None:
        PR, GB = of_module.PerceiverResampler, of_module.GatedCrossAttentionBlock
    else:
        PR, GB = OF_PerceiverResampler, OF_GatedCrossAttentionBlock
    kw = dict(max_num_frames=8) if of_module is None else dict(max_num_frames=8, max_num_media=None)
    their_r = PR(dim=s["d_visual"], depth=s["depth"], dim_head=s["dim_head"], heads=s["heads"],
                 num_latents=s["latents"], ff_mult=s["ff_mult"], **kw)
    their_b = nn.ModuleList(GB(dim=s["d_text"], dim_visual=s["d_visual"], dim_head=s["dim_head"],
                               heads=s["heads"], ff_mult=s["ff_mult"]) for _ in range(s["blocks"]))
    with torch.no_grad():
        for blk in ours_b:  # open gates, so every weight gets a gradient
            blk.attn_gate.fill_(0.5)
            blk.ff_gate.fill_(0.5)
        sd = {k.replace("temporal_embeddings", "frame_embs"): v for k, v in ours_r.state_dict().items()}
        their_r.load_state_dict(sd)
        for o, t in zip(ours_b, their_b):
            t.load_state_dict({k: v.reshape(t.state_dict()[k].shape) for k, v in o.state_dict().items()})
    return (ours_r, ours_b), (their_r, their_b)


def module_inputs(s: dict, device: str, padded: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b, t, n_img = s["b"], s["t_txt"], s["t_img"]
    ids = torch.randint(10, 100, (b, t), generator=g)
    counts = []
    for row in range(b):
        k = (row % n_img) + 1 if padded else n_img  # padded: rows hold 1..T_img images
        pos = torch.linspace(0, t - 8, k).long() + torch.randint(0, 4, (k,), generator=g)
        ids[row, pos] = IMG
        counts.append(k)
    feats = torch.randn(b, n_img, s["frames"], s["patches"], s["d_visual"], generator=g)
    x = torch.randn(b, t, s["d_text"], generator=g)
    return ids.to(device), feats.to(device), x.to(device).requires_grad_(True), torch.tensor(counts, device=device)


def our_forward(ours, ids, feats, x, counts, padded):
    resampler, blocks = ours
    if padded:  # what FlamingoModel.encode_vision does: padding images are not resampled
        used = torch.arange(feats.shape[1], device=feats.device)[None] < counts[:, None]
        tokens = resampler(feats[used][None])[0]
        media = tokens.new_zeros(feats.shape[0], feats.shape[1], *tokens.shape[1:]).index_put((used,), tokens)
    else:
        media = resampler(feats)
    mask = media_mask(image_index(ids, IMG), media.shape[1], media.shape[2], True)
    y = x
    for blk in blocks:
        y = blk(y, media, mask)
    return y


def their_forward(theirs, ids, feats, x):
    resampler, blocks = theirs
    media = resampler(feats)
    loc = ids == IMG
    y = x
    for blk in blocks:
        y = blk(y, media, loc)
    return y


def bench_modules(shape_name: str, reps: int, device: str = "cpu", dtype=None, of_module=None,
                  padded_too: bool = True) -> None:
    s = module_shapes(shape_name)
    torch.manual_seed(0)
    ours, theirs = build_module_pair(s, of_module)
    ours = tuple(m.to(device) for m in ours)
    theirs = tuple(m.to(device) for m in theirs)
    label = "open_flamingo helpers.py" if of_module is not None else "OpenFlamingo re-implementation"
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=dtype) if dtype is not None
                else torch.autocast(device_type="cpu", enabled=False))
    print(f"modules, shapes '{shape_name}' on {device}{' ' + str(dtype) if dtype else ''}: {s}")
    for padded in ((False, True) if padded_too else (False,)):
        ids, feats, x, counts = module_inputs(s, device, padded)
        with torch.no_grad(), autocast:
            a = our_forward(ours, ids, feats, x, counts, padded)
            b = their_forward(theirs, ids, feats, x)
        err = (a.float() - b.float()).abs().max().item()
        scale = b.float().abs().max().item()
        tol = 1e-4 if dtype is None else 5e-2
        if not err <= tol * max(scale, 1.0):
            raise SystemExit(f"outputs differ: max abs diff {err:.3g} (scale {scale:.3g}); not the same computation")

        def step(fwd):
            def run():
                for m in ours + theirs:
                    m.zero_grad(set_to_none=True)
                x.grad = None
                with autocast:
                    y = fwd()
                y.float().square().mean().backward()
            return run

        ours_step = step(lambda: our_forward(ours, ids, feats, x, counts, padded))
        their_step = step(lambda: their_forward(theirs, ids, feats, x))
        t = race({"ours": ours_step, "theirs": their_step}, reps, device=device)
        what = (f"rows hold 1..{s['t_img']} images (padded to {s['t_img']})" if padded
                else f"every row holds {s['t_img']} images")
        print(f"  {what}; outputs equal (max abs diff {err:.1e})")
        print(f"    ours:   {t['ours'] * 1e3:9.2f} ms/step   ({label}: {t['theirs'] * 1e3:9.2f} ms/step)")
        print(f"    speed-up ours vs {label}: {t['theirs'] / t['ours']:.2f}x (target >= 1.25x)")
        if device.startswith("cuda"):
            mem = {}
            for name, fn in (("ours", ours_step), ("theirs", their_step)):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
                fn()
                torch.cuda.synchronize()
                mem[name] = torch.cuda.max_memory_allocated(device) / 2**30
            print(f"    peak memory: ours {mem['ours']:.2f} GiB, theirs {mem['theirs']:.2f} GiB")


# ---------------------------------------------------------------- 3. GPU: ~1B LM, tokens/s and MFU

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
                    "A10G": 70.0, "A10": 125.0, "4090": 165.0, "V100": 125.0}


def peak_flops(device: str) -> float | None:
    if os.environ.get("FLAMINGO_PEAK_TFLOPS"):
        return float(os.environ["FLAMINGO_PEAK_TFLOPS"]) * 1e12
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def bench_large(device: str, reps: int, smoke: bool = False) -> None:
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel, LlamaConfig

    from model.flamingo import FlamingoModel
    from model.vision import CLIPVisionEncoder

    if smoke:  # toy sizes: checks the code path, not a measurement
        lm_cfg = LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=344, num_hidden_layers=4,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
        vis_cfg = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4)
        b, t, n_img, every = 2, 64, 2, 2
    else:  # TinyLlama-1.1B's architecture and OpenFlamingo's ViT-L/14
        lm_cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                             num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                             tie_word_embeddings=False)
        vis_cfg = CLIPVisionConfig(image_size=224, patch_size=14, hidden_size=1024, intermediate_size=4096,
                                   num_hidden_layers=24, num_attention_heads=16)
        b, t, n_img, every = 8, 256, 5, 4
    cfg = FlamingoConfig(lm="in-code Llama config", vision="in-code ViT-L/14 config",
                         cross_attn_every_n_layers=every, frozen_dtype="bfloat16")
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(lm_cfg, attn_implementation="sdpa").to(torch.bfloat16)
    vision = CLIPVisionEncoder(CLIPVisionModel(vis_cfg).to(torch.bfloat16))
    v = lm_cfg.vocab_size
    model = FlamingoModel(cfg, lm, vision, image_token_id=v, eoc_token_id=v + 1).to(device)
    model.train()
    lm_params = sum(p.numel() for n, p in model.lm.named_parameters() if ".gated." not in n)
    trainable = sum(p.numel() for p in model.trainable_parameters())

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, v, (b, t), generator=g)
    for row in range(b):
        ids[row, torch.linspace(0, t - 16, n_img).long()] = v
    s = vision.image_size
    vx = torch.randn(b, n_img, 1, 3, s, s, generator=g)
    ids, vx = ids.to(device), vx.to(device)
    labels = ids
    dev_type = device.split(":")[0]

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev_type, dtype=torch.bfloat16):
            loss = model(ids, None, vx, labels=labels).loss
        loss.backward()

    step()
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    if dev_type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sec = race({"step": step}, reps, warmup=1, device=device)["step"]
    tag = "SMOKE RUN (toy sizes on CPU; figures meaningless)" if smoke else torch.cuda.get_device_name(device)
    print(f"large config on {device} [{tag}]: LM {lm_params / 1e9:.2f}B params (frozen, bf16), "
          f"trainable {trainable / 1e6:.0f}M, blocks every {every} layers; batch {b} x {t} tokens, "
          f"{n_img} images of {s}px per row")
    print(f"  {sec * 1e3:.1f} ms/step, {b * t / sec:,.0f} tokens/s, {flops / 1e9:,.1f} GFLOP/step "
          f"(counted), {flops / sec / 1e12:.2f} TFLOP/s")
    peak = peak_flops(device)
    if peak:
        print(f"  MFU {100 * flops / sec / peak:.1f}% of {peak / 1e12:.0f} TFLOP/s bf16 peak")
    else:
        print("  MFU: unknown peak for this device (set FLAMINGO_PEAK_TFLOPS)")
    if dev_type == "cuda":
        print(f"  peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="timed rounds per measurement")
    ap.add_argument("--skip-modules", action="store_true", help="only the tiny-config step")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 gives steadier figures on a busy machine)")
    ap.add_argument("--gpu-path-smoke", action="store_true",
                    help="run the GPU code path on the CPU at toy sizes (checks that it runs)")
    ap.add_argument("--openflamingo-helpers", default=None,
                    help="compare against this open_flamingo src/helpers.py instead of the re-implementation")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    of_module = load_openflamingo_helpers(args.openflamingo_helpers) if args.openflamingo_helpers else None

    bench_tiny(args.reps)
    if not args.skip_modules:
        bench_modules("tiny", args.reps, of_module=of_module, padded_too=False)
        bench_modules("medium", max(3, args.reps // 2), of_module=of_module)
    if torch.cuda.is_available():
        bench_large("cuda", args.reps)
        bench_modules("of3b", args.reps, device="cuda", dtype=torch.bfloat16, of_module=of_module)
    else:
        print("GPU part: no CUDA device here, so no tokens/s or MFU for the ~1B config "
              "(the code path runs with --gpu-path-smoke).")
    if args.gpu_path_smoke:
        bench_large("cpu", 2, smoke=True)


if __name__ == "__main__":
    main()
