"""Prompts: the paper's / OpenFlamingo's text for each kind of task.

A demonstration is serialised as the pairs format of the training data,
``<image>{text}<EOC>`` (shards.schema.serialize_pair, through
model.generation.few_shot_prompt), and the query is ``<image>{query text}``:

=========  ================================================================  ==================
kind       demonstration text                                                query text ends
=========  ================================================================  ==================
caption    ``Output:{caption}``                                              ``Output:``
vqa/ivqa   ``Question:{question} Short answer:{answer}``                     ``Short answer:``
hateful    ``is an image with: '{text}' written on it. Is it hateful? Answer:{yes|no}``  ``Answer:``
classify   ``Output:{class name}``                                           ``Output:``
rareact    (zero-shot only) ``Output:{verb} {noun}`` ranked                   ``Output:``
choice     ``Question:{question} Answer:{correct candidate}``                ``Answer:``
visdial    ``Caption:{caption}. Dialogue: Question:{q} Answer:{a}. ... Question:{q} Answer:{a}``  ``Answer:``
=========  ================================================================  ==================

Zero-shot is the paper's form: two demonstrations of the task with their
images removed (``{text}<EOC>`` each), then the query with its image.
Ranked kinds score each candidate continuation ``{candidate}<EOC>``.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from shards.schema import IMAGE_TOKEN, serialize_pair

ZERO_SHOT_TEXT_EXAMPLES = 2


def demo_answer(record: dict) -> str:
    """The answer a VQA demonstration shows: the consensus answer, else the most frequent one."""
    if record.get("multiple_choice_answer"):
        return record["multiple_choice_answer"]
    counts = Counter(record["answers"])
    return max(record["answers"], key=lambda a: (counts[a], -record["answers"].index(a)))


def _visdial_context(record: dict) -> str:
    turns = "".join(f"Question:{q} Answer:{a}. " for q, a in record.get("history", []) if a is not None)
    return f"Caption:{record.get('caption', '')}. Dialogue: {turns}Question:{record['question']} Answer:"


def query_text(kind: str, record: dict) -> str:
    """The text after the query's ``<image>``, up to where the model answers."""
    if kind in ("caption", "classify", "rareact"):
        return "Output:"
    if kind in ("vqa", "ivqa"):
        return f"Question:{record['question']} Short answer:"
    if kind == "hateful":
        return f"is an image with: '{record['text']}' written on it. Is it hateful? Answer:"
    if kind == "choice":
        return f"Question:{record['question']} Answer:"
    if kind == "visdial":
        return _visdial_context(record)
    raise ValueError(f"unknown task kind {kind!r}")


def target_text(kind: str, record: dict) -> str:
    """The answer a demonstration shows after its query text."""
    if kind == "caption":
        return record["captions"][0]
    if kind in ("vqa", "ivqa"):
        return demo_answer(record)
    if kind == "hateful":
        return "yes" if int(record["label"]) == 1 else "no"
    if kind in ("classify", "rareact"):
        return record["class_name"]
    if kind == "choice":
        return record["candidates"][int(record["answer"])]
    if kind == "visdial":
        if "gt_index" in record:
            return record["options"][int(record["gt_index"])]
        rel = record["relevance"]
        return record["options"][max(range(len(rel)), key=lambda i: rel[i])]
    raise ValueError(f"unknown task kind {kind!r}")


def demo_text(kind: str, record: dict) -> str:
    return query_text(kind, record) + target_text(kind, record)


def prompt_text(kind: str, demos: Sequence[dict], query: dict, text_only: Sequence[dict] = ()) -> str:
    """The whole prompt string: text-only examples (zero-shot), demonstrations, the query."""
    prefix = "".join(serialize_pair(demo_text(kind, r)).replace(IMAGE_TOKEN, "", 1) for r in text_only)
    return prefix + "".join(serialize_pair(demo_text(kind, r)) for r in demos) + IMAGE_TOKEN + query_text(kind, query)


def build_prompt(kind: str, demos: Sequence[tuple], query: tuple, text_only: Sequence[dict] = ()):
    """(text, vision_x row) for the model: ``demos`` and ``query`` are (image tensor, record)."""
    from model.generation import few_shot_prompt
    text, vision = few_shot_prompt([(img, demo_text(kind, r)) for img, r in demos], query[0],
                                   query_text(kind, query[1]))
    prefix = prompt_text(kind, [], query[1], text_only)[: -len(IMAGE_TOKEN + query_text(kind, query[1]))]
    return prefix + text, vision


def candidates(kind: str, record: dict, classes: Sequence[str] = ()) -> list[str]:
    """What a ranked kind ranks: class names, answer candidates, dialogue options, yes/no."""
    if kind in ("classify", "rareact"):
        return list(classes)
    if kind == "choice":
        return list(record["candidates"])
    if kind == "visdial":
        return list(record["options"])
    if kind == "hateful":
        return ["yes", "no"]
    raise ValueError(f"task kind {kind!r} is not ranked")
