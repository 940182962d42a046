"""Tokenizers: a byte-level one built in code, and the two Flamingo tokens.

``tiny_tokenizer`` needs no download and no files: every byte is one token
(ids 0-255 are the byte values), plus an end-of-text and a padding token. It
is what the tests, the demo and the ``tiny-*`` language models use. Real
language models bring their own tokenizer from their local directory.
"""
from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from shards.schema import EOC_TOKEN, IMAGE_TOKEN

TINY_EOS = "<|endoftext|>"
TINY_PAD = "<pad>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters.

    Byte-level BPE works on these characters; we keep its order so that the
    token id of a byte is the byte value.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = {}
    extra = 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A deterministic byte-level tokenizer: 256 byte tokens, then EOS (256) and PAD (257).

    No merges, so a text of n UTF-8 bytes is n tokens: fine for tests and the
    demo, where sequences are short and the vocabulary must be tiny.
    """
    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(TINY_EOS, special=True, normalized=False),
                            AddedToken(TINY_PAD, special=True, normalized=False)])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=TINY_EOS, pad_token=TINY_PAD,
                                  bos_token=TINY_EOS)
    out.model_max_length = 4096
    return out


def add_flamingo_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """Add ``<image>`` and ``<EOC>`` as special tokens (idempotent); return their ids.

    Also gives the tokenizer a pad token (its EOS) when it has none, since the
    trainer pads batches. The model side (new embedding rows) is done by
    :class:`model.embeddings.ExtendedEmbedding` from these ids.
    """
    vocab = tokenizer.get_vocab()
    missing = [t for t in (IMAGE_TOKEN, EOC_TOKEN) if t not in vocab]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False, single_word=False,
                                         lstrip=False, rstrip=False) for t in missing],
                             special_tokens=True)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("tokenizer has neither a pad nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    return flamingo_token_ids(tokenizer)


def flamingo_token_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """(image_token_id, eoc_token_id); raises if add_flamingo_tokens was not called."""
    vocab = tokenizer.get_vocab()
    try:
        return vocab[IMAGE_TOKEN], vocab[EOC_TOKEN]
    except KeyError as e:
        raise ValueError(f"tokenizer lacks {e.args[0]!r}: call add_flamingo_tokens first") from None
