"""Metrics of the Flamingo paper's benchmarks, as their reference implementations compute them.

- Captioning: **CIDEr-D** and **BLEU-4** (and METEOR / ROUGE-L on request)
  exactly as the COCO caption evaluation server computes them: the
  ``pycocoevalcap`` package (the server's own code, pinned) with its Stanford
  PTB tokeniser (Java) over references and predictions, and CIDEr-D's IDF from
  the references of the whole evaluated set. We call its scorers; nothing is
  re-implemented. SPICE is left out: it downloads Stanford CoreNLP models at
  first use, which a fresh offline machine cannot.
- Open VQA: the official VQA evaluation (``vqaEval.py`` of the VQA API):
  answer normalisation (punctuation, number words, articles, contractions)
  and accuracy ``min(#matching humans / 3, 1)`` averaged over the 10
  leave-one-out subsets of the human answers. There is no package of it on
  PyPI, so it is written here, following the script step by step, quirks
  included (reference answers get only the punctuation step, and only when the
  humans disagree; the period regex and its ``count`` argument are the
  script's). tests/eval/test_metrics.py holds the official script's outputs on
  the real VQAv2 annotations sample.
- iVQA (Yang et al. 2021): ``min(#annotators giving the answer / 2, 1)`` over its 5 answers.
- HatefulMemes: ROC-AUC of P("yes") (the Mann-Whitney statistic, ties counted half).
- Classification / multiple choice: top-1 / top-5 accuracy of a ranking.
- VisDial: NDCG as the VisDial v1.0 evaluation computes it (the top-k ranked
  options, k = the number of options with non-zero relevance).
- RareAct: **mWAP** as the dataset's ``compute_score.py`` computes it
  (github.com/antoine77340/RareAct): per (verb, noun) class with a positive,
  the clips scored are its rows labelled 1 (positives), its rows labelled 0
  (negatives) and 2-4 (hard negatives), plus every other class's positives
  (a hard negative when they share the verb or the noun, else a negative); the
  average precision of scikit-learn's ``average_precision_score`` (the script's
  own call) with each clip weighted 1 / (its video's clips within the same
  group: positives, negatives, hard negatives); the mean over the classes.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
from collections import Counter
from typing import Mapping, Sequence

import numpy as np

# ---------------------------------------------------------------- VQA normalisation

# The VQA evaluation's contraction table (missing apostrophe -> the written form).
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn’t’ve", "couldnt’ve": "couldn’t’ve", "didnt": "didn’t", "doesnt": "doesn’t",
    "dont": "don’t", "hadnt": "hadn’t", "hadnt’ve": "hadn’t’ve", "hadn'tve": "hadn’t’ve",
    "hasnt": "hasn’t", "havent": "haven’t", "hed": "he’d", "hed’ve": "he’d’ve", "he’dve": "he’d’ve",
    "hes": "he’s", "howd": "how’d", "howll": "how’ll", "hows": "how’s", "Id’ve": "I’d’ve",
    "I’dve": "I’d’ve", "Im": "I’m", "Ive": "I’ve", "isnt": "isn’t", "itd": "it’d", "itd’ve": "it’d’ve",
    "it’dve": "it’d’ve", "itll": "it’ll", "let’s": "let’s", "maam": "ma’am", "mightnt": "mightn’t",
    "mightnt’ve": "mightn’t’ve", "mightn’tve": "mightn’t’ve", "mightve": "might’ve", "mustnt": "mustn’t",
    "mustve": "must’ve", "neednt": "needn’t", "notve": "not’ve", "oclock": "o’clock",
    "oughtnt": "oughtn’t", "ow’s’at": "’ow’s’at", "’ows’at": "’ow’s’at", "’ow’sat": "’ow’s’at",
    "shant": "shan’t", "shed’ve": "she’d’ve", "she’dve": "she’d’ve", "she’s": "she’s",
    "shouldve": "should’ve", "shouldnt": "shouldn’t", "shouldnt’ve": "shouldn’t’ve",
    "shouldn’tve": "shouldn’t’ve", "somebody’d": "somebodyd", "somebodyd’ve": "somebody’d’ve",
    "somebody’dve": "somebody’d’ve", "somebodyll": "somebody’ll", "somebodys": "somebody’s",
    "someoned": "someone’d", "someoned’ve": "someone’d’ve", "someone’dve": "someone’d’ve",
    "someonell": "someone’ll", "someones": "someone’s", "somethingd": "something’d",
    "somethingd’ve": "something’d’ve", "something’dve": "something’d’ve", "somethingll": "something’ll",
    "thats": "that’s", "thered": "there’d", "thered’ve": "there’d’ve", "there’dve": "there’d’ve",
    "therere": "there’re", "theres": "there’s", "theyd": "they’d", "theyd’ve": "they’d’ve",
    "they’dve": "they’d’ve", "theyll": "they’ll", "theyre": "they’re", "theyve": "they’ve",
    "twas": "’twas", "wasnt": "wasn’t", "wed’ve": "we’d’ve", "we’dve": "we’d’ve", "weve": "we've",
    "werent": "weren’t", "whatll": "what’ll", "whatre": "what’re", "whats": "what’s",
    "whatve": "what’ve", "whens": "when’s", "whered": "where’d", "wheres": "where's",
    "whereve": "where’ve", "whod": "who’d", "whod’ve": "who’d’ve", "who’dve": "who’d’ve",
    "wholl": "who’ll", "whos": "who’s", "whove": "who've", "whyll": "why’ll", "whyre": "why’re",
    "whys": "why’s", "wont": "won’t", "wouldve": "would’ve", "wouldnt": "wouldn’t",
    "wouldnt’ve": "wouldn’t’ve", "wouldn’tve": "wouldn’t’ve", "yall": "y’all", "yall’ll": "y’all’ll",
    "y’allll": "y’all’ll", "yall’d’ve": "y’all’d’ve", "y’alld’ve": "y’all’d’ve", "y’all’dve": "y’all’d’ve",
    "youd": "you’d", "youd’ve": "you’d’ve", "you’dve": "you’d’ve", "youll": "you’ll",
    "youre": "you’re", "youve": "you’ve",
}
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
# The script's pattern (its "(?!<=" is a negative lookahead of "<=", kept as is)
# and its call sub("", text, re.UNICODE), which passes 32 as the replacement count.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_PERIOD_COUNT = int(re.UNICODE)
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
_PUNCT = [";", ":", "/", "'", "[", "]", '"', "(", ")", "=", "+", "\\", "_", ">", "<", "@", "`", ",", "?"]


def vqa_punctuation(text: str) -> str:
    """The VQA evaluation's punctuation step (``processPunctuation``)."""
    out = text
    comma = _COMMA_STRIP.search(text) is not None
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, _PERIOD_COUNT)


def vqa_digits_articles(text: str) -> str:
    """The VQA evaluation's number-word / article / contraction step (``processDigitArticle``)."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa_answer(text: str) -> str:
    """A predicted answer as the VQA evaluation compares it."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return vqa_digits_articles(vqa_punctuation(text))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy in [0, 1] of one prediction against the human answers (10 in VQAv2).

    For each human answer, the other humans are a subset; the prediction
    scores min(#subset answers equal to it / 3, 1) there; the mean over the
    subsets is the accuracy.
    """
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    pred = normalize_vqa_answer(prediction)
    gts = list(answers)
    if len(set(gts)) > 1:
        gts = [vqa_punctuation(a) for a in gts]
    total = 0.0
    for i in range(len(gts)):
        # (The script compares answer records, which differ by answer_id, so
        # exactly one answer is left out each time.)
        matches = sum(1 for j, a in enumerate(gts) if j != i and a == pred)
        total += min(1.0, matches / 3)
    return total / len(gts)


def ivqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """iVQA's accuracy: min(#annotators who gave the (normalised) answer / 2, 1)."""
    pred = normalize_vqa_answer(prediction)
    return min(1.0, sum(1 for a in answers if normalize_vqa_answer(a) == pred) / 2)


# ---------------------------------------------------------------- captioning

CAPTION_METRICS = ("cider", "bleu4", "meteor", "rouge_l")
_CAPTION_NAMES = {"cider": "CIDEr", "bleu4": "BLEU-4", "meteor": "METEOR", "rouge_l": "ROUGE-L"}


@contextlib.contextmanager
def _java_stderr_quiet():
    """The PTB tokeniser (a Java child process) writes a line per call and a warning per
    untokenisable character to our stderr; keep them off the terminal unless it fails."""
    import os
    import sys
    import tempfile
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):   # captured stderr: nothing to hide
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            tmp.seek(0)
            sys.stderr.write(tmp.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def caption_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   metrics: Sequence[str] = ("cider", "bleu4")) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Corpus scores and per-item scores of predicted captions, as the COCO server computes them.

    ``predictions`` {item id: caption}; ``references`` {item id: [human captions]}
    for the same ids. Both sides go through the PTB tokeniser; CIDEr-D's
    document frequencies come from the references of all the items given, so
    score a whole eval split in one call. Returns ({"CIDEr": .., "BLEU-4": ..},
    {item id: {metric: score}}).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    unknown = [m for m in metrics if m not in CAPTION_METRICS]
    if unknown:
        raise ValueError(f"unknown caption metric(s) {unknown}; known: {', '.join(CAPTION_METRICS)}")
    if set(predictions) != set(references):
        missing = sorted(set(references) - set(predictions))[:5]
        extra = sorted(set(predictions) - set(references))[:5]
        raise ValueError(f"predictions and references name different items (missing {missing}, extra {extra})")
    empty = [k for k, refs in references.items() if not refs]
    if empty:
        raise ValueError(f"items without reference captions: {empty[:5]}")
    import shutil
    if shutil.which("java") is None:
        raise RuntimeError("caption metrics need Java for the COCO PTB tokeniser: no `java` on PATH "
                           "(Debian: apt-get install default-jre-headless)")
    ids = list(references)
    tok = PTBTokenizer()
    with _java_stderr_quiet():
        gts = tok.tokenize({k: [{"caption": c} for c in references[k]] for k in ids})
        # An empty line would be lost by the tokeniser's line split; a space is the same empty caption.
        res = tok.tokenize({k: [{"caption": predictions[k] or " "}] for k in ids})
    for k in ids:
        res.setdefault(k, [""])
    corpus: dict[str, float] = {}
    per_item: dict[str, dict[str, float]] = {k: {} for k in ids}
    for m in metrics:
        if m == "cider":
            scorer = Cider()
        elif m == "bleu4":
            scorer = Bleu(4)
        elif m == "meteor":
            from pycocoevalcap.meteor.meteor import Meteor
            scorer = Meteor()
        else:
            from pycocoevalcap.rouge.rouge import Rouge
            scorer = Rouge()
        with contextlib.redirect_stdout(io.StringIO()):   # BLEU prints its length ratio
            score, scores = scorer.compute_score(gts, res)
        if m == "bleu4":     # Bleu(4) returns BLEU-1..4; BLEU-4 is the last
            score, scores = score[3], scores[3]
        name = _CAPTION_NAMES[m]
        corpus[name] = float(score)
        for k, s in zip(gts.keys(), scores):
            per_item[k][name] = float(s)
    return corpus, per_item


# ---------------------------------------------------------------- ranked / closed tasks


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC-AUC needs both classes (got {n_pos} positive, {n_neg} negative)")
    from scipy.stats import rankdata
    ranks = rankdata(s)                       # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def topk_correct(scores: Sequence[float], answer: int, k: int) -> bool:
    """Is ``answer`` among the k highest scores (ties broken by position, first wins)?"""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return int(answer) in order[:k].tolist()


def visdial_ndcg(scores: Sequence[float], relevance: Sequence[float]) -> float:
    """NDCG of one VisDial round as the v1.0 evaluation computes it.

    Options are ranked by score (ties: lower index first); k = the number of
    options with non-zero relevance; DCG@k = sum rel / log2(rank + 1) over the
    top k; divided by the DCG@k of the options sorted by relevance.
    """
    rel = np.asarray(relevance, dtype=np.float64)
    k = int((rel != 0).sum())
    if k == 0:
        raise ValueError("a VisDial round with no relevant option has no NDCG")
    ranking = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    best = np.argsort(-rel, kind="stable")[:k]
    discounts = np.log2(np.arange(k) + 2)
    return float((rel[ranking] / discounts).sum() / (rel[best] / discounts).sum())


def rareact_mwap(rows: Sequence[Mapping], scores: Sequence[Mapping[int, float]]) -> float:
    """RareAct's mean weighted average precision (see the module docstring), in [0, 1].

    ``rows``: the annotation rows (``video_id``, ``verb``, ``noun``,
    ``class_id``, ``annotation``); ``scores[i]``: {class id: score} of row i's
    clip, holding at least its own class and, for a positive row, every class.
    """
    from sklearn.metrics import average_precision_score

    if len(rows) != len(scores):
        raise ValueError(f"rareact_mwap: {len(rows)} rows but {len(scores)} score sets")
    class_of: dict[tuple[str, str], int] = {}
    for r in rows:
        class_of.setdefault((r["verb"], r["noun"]), int(r["class_id"]))
    groups = {a: {"pos": [], "neg": [], "hneg": []} for a in class_of}
    for i, r in enumerate(rows):
        own = (r["verb"], r["noun"])
        label = int(r["annotation"])
        if label == 1:
            groups[own]["pos"].append(i)
            for a, g in groups.items():          # a positive of one class is a negative of the others
                shared = (a[0] == own[0]) + (a[1] == own[1])
                if shared == 1:
                    g["hneg"].append(i)
                elif shared == 0:
                    g["neg"].append(i)
        else:
            groups[own]["neg" if label == 0 else "hneg"].append(i)
    aps = []
    for a, g in groups.items():
        if not g["pos"]:
            continue
        cid = class_of[a]
        idx, labels, weights = [], [], []
        for name in ("pos", "neg", "hneg"):
            per_video = Counter(rows[i]["video_id"] for i in g[name])
            for i in g[name]:
                idx.append(i)
                labels.append(int(name == "pos"))
                weights.append(1.0 / per_video[rows[i]["video_id"]])
        try:
            s = [float(scores[i][cid]) for i in idx]
        except KeyError as e:
            raise ValueError(f"rareact_mwap: no score for class {e.args[0]} of a row that needs it") from None
        aps.append(float(average_precision_score(labels, s, sample_weight=weights)))
    if not aps:
        raise ValueError("rareact_mwap: no class has a positive clip")
    return sum(aps) / len(aps)


def mean_and_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean and (population) standard deviation over trials."""
    v = [float(x) for x in values]
    mean = sum(v) / len(v)
    return {"mean": mean, "std": math.sqrt(sum((x - mean) ** 2 for x in v) / len(v)), "n": len(v)}
