"""Text contamination on real COCO captions: 13-grams over a document's whole
word stream (across paragraph breaks) and exact captions quoted as one sentence
of a paragraph."""
from __future__ import annotations

from pathlib import Path

import pytest

from dedup import fingerprints as fp
from dedup.apply import filter_m3w_document
from dedup.evalsets import load_eval_set, parse_eval_arg
from dedup.index import EvalIndex

DATA = Path(__file__).resolve().parents[1] / "data"
# Real captions of coco_captions_val2014_sample.json
LONG = ("Cars try to maneuver into parking spaces along a densely packed city street.")  # 16977, 13 words
SHORT = "A black cat is inside a white toilet."                                           # 285421, 8 words


@pytest.fixture(scope="module")
def coco_index():
    items = load_eval_set(parse_eval_arg(
        f"coco_captions={DATA / 'evalsets' / 'coco_captions_val2014_sample.json'}:{DATA / 'images'}"),
        require_media=False)
    texts = {t.strip() for it in items for t in it.texts}
    assert LONG in texts and SHORT in texts
    return EvalIndex.from_items(items)


def ids(pairs):
    return [(pos, m.item_id, m.detail) for pos, m in pairs]


def test_13gram_across_a_paragraph_break(coco_index):
    words = LONG.split()
    nodes = ["Parking downtown is getting worse every month. " + " ".join(words[:6]),
             " ".join(words[6:]) + " Nobody seems to mind.",
             "Unrelated closing words here."]
    # per node (the old rule) nothing: neither paragraph holds 13 of the words
    assert all(coco_index.match_text(t) == [] for t in nodes)
    got = coco_index.match_texts(nodes)
    assert ids(got) == [(0, "16977", "13-gram across paragraphs")]
    doc, matches = filter_m3w_document({"nodes": nodes + [{"phash": "0" * 16}]}, coco_index)
    assert doc is None and ids(matches) == [(0, "16977", "13-gram across paragraphs")]
    # tag keeps the document and reports the same match
    doc, matches = filter_m3w_document({"nodes": nodes}, coco_index, "tag")
    assert doc == {"nodes": nodes} and len(matches) == 1


def test_gram_inside_one_paragraph_keeps_its_plain_name(coco_index):
    got = coco_index.match_texts(["Look: " + LONG.lower() + " Then we left.", "Next paragraph."])
    assert ids(got) == [(0, "16977", "13-gram")]


def test_short_caption_as_a_sentence_inside_a_paragraph(coco_index):
    para = (f"We stayed at my aunt's house last weekend. {SHORT.upper()} "
            "She laughed and took a picture of it!")
    assert fp.sentences(para)[1] == SHORT.upper()
    assert ids(coco_index.match_texts(["Holiday notes", para])) == [(1, "285421", "exact sentence")]
    # the whole node being the caption is still the plain exact match
    assert ids(coco_index.match_texts(["  a black cat, is inside a WHITE toilet "])) == [(0, "285421", "exact")]
    # a pair caption (one text) gets the sentence rule too
    assert [m.item_id for m in coco_index.match_text("Funny. " + SHORT + " Really.")] == ["285421"]


def test_sentence_must_be_the_whole_caption(coco_index):
    words = SHORT.rstrip(".").split()
    near = [f"It was odd. {' '.join(words[:-1])}. We laughed.",      # last word cut
            f"It was odd. {SHORT[:-1]} seat. We laughed.",             # a word added
            f"It was odd, {SHORT.lower()} We laughed."]                # not its own sentence
    assert coco_index.match_texts(near) == []


def test_short_sentences_do_not_match_inside_paragraphs():
    from dedup.evalsets import EvalItem
    idx = EvalIndex.from_items([EvalItem("vqa", "val", "q1", None, texts=("What is the man doing?",))])
    assert idx.thresholds["text_sentence_min_words"] == 6
    assert idx.match_texts(["I asked him. What is the man doing? He did not know."]) == []
    assert ids(idx.match_texts(["What is the man doing?"])) == [(0, "q1", "exact")]


def test_sentences_split():
    assert fp.sentences("One two. \"Three four!\" Five?\nSix\n\nseven") == [
        "One two.", "\"Three four!", "Five?", "Six", "seven"]
