from pipeline.filters import (FilterConfig, LangId, char_repetition_ratio, count_words,
                              document_drop_reason, image_drop_reason, language_drop_reason,
                              paragraph_drop_reason, special_char_ratio)

C = FilterConfig()


def test_paragraph_filters_by_reason():
    assert paragraph_drop_reason("Mozilla is a free software community founded in 1998.", C) is None
    assert paragraph_drop_reason("Read more", C) == "too_few_words"
    assert paragraph_drop_reason(" ".join(f"w{i}" for i in range(1001)), C) == "too_many_words"
    assert paragraph_drop_reason("$$$ ### !!! 123 456 ||| ***", C) == "special_characters"
    assert paragraph_drop_reason("click here click here click here click here click here", C) == "character_repetition"
    assert char_repetition_ratio("abcdefghijklmnopqrstuvwxyz") == 0.0
    assert special_char_ratio("ab!!") == 0.5


def test_cjk_counts_characters_as_words():
    assert count_words("日本語のテキスト") == 8
    assert count_words("Hello 世界") == 3


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
