"""Flamingo on any Hugging Face causal LM.

Modules (the data path, top to bottom):

    tokenizer.py   tiny_tokenizer() (byte-level, built in code, no download);
                   add_flamingo_tokens(tok) adds <image> and <EOC> (from shards.schema)
    vision.py      VisionEncoder interface; CLIPVisionEncoder for a local CLIP dir or "tiny"
    resampler.py   PerceiverResampler: patch features -> 64 visual tokens per image/video
    masking.py     which visual tokens each text token sees (latest image / all previous)
    xattn.py       GATED XATTN-DENSE block (tanh gates at 0, torch SDPA)
    embeddings.py  trainable rows for the two new tokens on a frozen embedding / head
    lm.py          building the LM; finding its decoder layers; splicing blocks in
    flamingo.py    FlamingoModel, FlamingoCache (KV cache + visual tokens + image count)
    generation.py  greedy / beam search; few-shot prompts; left-padded prompt batches
    state.py       save / load the trainable weights (+ config): safetensors or weights_only
    config.py      FlamingoConfig
    build.py       build_flamingo(cfg) -> (FlamingoModel, tokenizer)

The interface the trainer relies on
-----------------------------------

``model.tokenizer.tiny_tokenizer() -> PreTrainedTokenizerFast``
    Deterministic byte-level tokenizer (ids 0-255 = bytes, 256 = eos/bos
    ``<|endoftext|>``, 257 = pad ``<pad>``). ``add_flamingo_tokens(tok) ->
    (image_id, eoc_id)`` adds ``IMAGE_TOKEN``/``EOC_TOKEN`` as special tokens
    (idempotent). build_flamingo already calls it.

``model.config.FlamingoConfig`` (plain dataclass, JSON-serialisable)
    lm ("tiny-gpt2" | "tiny-opt" | "tiny-llama" | "tiny-gemma" | local dir), vision ("tiny" |
    local CLIP dir), cross_attn_every_n_layers (1 = every layer; a block goes
    before layer i when (i+1) % n == 0), num_latents=64, resampler_depth /
    _heads / _dim_head / _ff_mult, max_frames, xattn_heads / _dim_head /
    _ff_mult, only_attend_latest_image=True, freeze_lm, freeze_vision,
    gradient_checkpointing, vision_feature_layer, frozen_dtype, seed.
    Defaults are the paper / OpenFlamingo sizes; ``FlamingoConfig.tiny(lm=...,
    **overrides)`` gives the small sizes for the tiny LMs (CPU step: tens of ms).

``model.build.build_flamingo(cfg) -> (FlamingoModel, tokenizer)``
    Built on CPU, deterministically from cfg.seed (the global RNG is left
    alone); move with ``.to(device)``. Nothing is downloaded: a missing local
    path is a FileNotFoundError.

``FlamingoModel.forward(input_ids [B,T], attention_mask [B,T] = None,
vision_x [B,T_img,F,C,H,W] float | None = None, labels [B,T] | None = None,
past_key_values: FlamingoCache | None = None, use_cache=False,
position_ids=None, logits_to_keep=0) -> FlamingoOutput(loss, logits, past_key_values)``
    loss = mean next-token cross-entropy over labels != -100 (logits[:, :-1]
    against labels[:, 1:]). The k-th ``<image>`` token of a row uses
    vision_x[row, k]; pad vision_x for rows with fewer images (padding images
    are not encoded and never attended). More ``<image>`` tokens than images
    in a row is a ValueError. An image is a video with F=1; F <= max_frames.
    vision_x=None: no pictures (the blocks' dense part still runs). Every
    token from an ``<image>`` up to the next one attends to that image only
    (only_attend_latest_image) or to all images so far; tokens before the
    first image get exactly zero cross-attention. Mixed precision: the
    trainable weights are float32, run the step under torch.autocast.

``FlamingoModel`` attributes and helpers
    image_size, image_mean, image_std (resize to image_size x image_size,
    scale to [0, 1], normalise with mean/std per channel); image_token_id,
    eoc_token_id, vocab_size; trainable_parameters() / named_trainable_parameters()
    (resampler, gated blocks, the new-token rows); gate_values() ->
    {"<layer>.attn": tanh(alpha), "<layer>.ff": ...}; save_trainable(path)
    (``*.safetensors`` or torch.save, loadable with weights_only=True);
    load_trainable(path) (in place); generate(input_ids, attention_mask,
    vision_x, max_new_tokens=20, num_beams=1, eos_token_id=None,
    length_penalty=1.0) -> [B, T + L] ids (prompts left-padded; stops at
    <EOC> or EOS). ``model.lm(...)`` called directly is the LM alone.

``model.state``: save_trainable(model, path), load_trainable(model, path),
``load_flamingo(path) -> (model, tokenizer)`` (rebuilds from the saved config).

``model.generation``: few_shot_prompt(support [(image, text)], query_image,
query_text="") -> (text, vision_x row) in the ``<image>text<EOC>`` format;
collate_prompts(tokenizer, prompts) -> left-padded (input_ids, attention_mask, vision_x).

Distributed: FlamingoLayer (model.lm) is the unit to wrap for FSDP; the frozen
parts have requires_grad=False, so use_orig_params=True (or FSDP2) is needed
when wrapping them together with trainable blocks.
"""

_EXPORTS = {
    "FlamingoConfig": "model.config",
    "build_flamingo": "model.build",
    "FlamingoModel": "model.flamingo",
    "FlamingoCache": "model.flamingo",
    "FlamingoOutput": "model.flamingo",
    "tiny_tokenizer": "model.tokenizer",
    "add_flamingo_tokens": "model.tokenizer",
    "save_trainable": "model.state",
    "load_trainable": "model.state",
    "load_flamingo": "model.state",
    "few_shot_prompt": "model.generation",
    "collate_prompts": "model.generation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy, so ``import model.config`` does not pull in torch and transformers.
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
