"""The shard browser in a real headless Chromium (Debian's chromium package),
on the bundled outputs of the three jobs: the page loads with no console
error, shows the expected numbers of documents and images, its images are the
shards' own bytes, and its filters agree with the server's."""
import base64
import hashlib
import json
import threading
import urllib.request

import pytest

from shards.browse import Corpus, main, make_server, static_page
from shards.reader import iter_tar_samples
from tests.helpers.browser import Chromium, chromium_path



def _shard_members(out_dir):
    """{(key, member): bytes} of every tar listed in the output's manifest(s)."""
    members = {}
    dirs = [out_dir] if (out_dir / "manifest.json").exists() else sorted(
        d for d in out_dir.iterdir() if (d / "manifest.json").exists())
    for d in dirs:
        for shard in json.loads((d / "manifest.json").read_text())["shards"]:
            for s in iter_tar_samples((d / shard["name"]).read_bytes()):
                for k, v in s.items():
                    if k != "__key__":
                        members[(s["__key__"], k)] = v
    return members


def _expected(out_dir):
    members = _shard_members(out_dir)
    metas = [json.loads(v) for (k, m), v in members.items() if m == "json"]
    return members, metas


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (.ci/run installs it on CI)")
    with Chromium() as b:
        yield b


def _page(tmp_path, out_dir, name="page.html"):
    corpus = Corpus(str(out_dir))
    html, _ = static_page(corpus, 0)
    corpus.close()
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def _open(browser, url):
    browser.errors.clear()
    browser.open(url)
    assert browser.eval("window.browseReady") is True
    return browser


LOADED = ("Promise.all([...document.images].map(im => { im.loading = 'eager'; return im.decode(); }))"
          ".then(() => [...document.images].every(im => im.complete && im.naturalWidth > 0))")


def _show_all(b):
    return b.eval("browse.state.limit = 1000; browse.draw().then(() => true)")


def test_m3w_page_shows_every_document_and_image_with_the_shards_bytes(bundled_outputs, tmp_path, browser):
    out = bundled_outputs["m3w"]
    members, metas = _expected(out)
    n_docs, n_images = len(metas), sum(len(m["images"]) for m in metas)
    assert n_docs >= 5 and n_images >= n_docs
    b = _open(browser, _page(tmp_path, out).as_uri())
    assert b.eval("document.getElementById('count').textContent") == \
        f"{n_docs} documents · {n_images} images"
    assert b.eval("document.querySelectorAll('.sample').length") == min(20, n_docs)
    _show_all(b)
    assert b.eval("document.querySelectorAll('.sample').length") == n_docs
    assert b.eval("document.querySelectorAll('.sample img.shard-image').length") == n_images
    # each <image> token is followed by its picture; <EOC> tokens as serialised
    assert b.eval("document.querySelectorAll('.tok.img').length") == n_images
    assert b.eval("document.querySelectorAll('.tok.eoc').length") == sum(
        m["text"].count("<EOC>") for m in metas)
    # an image element's source is the shard's image
    for i in (0, n_images - 1):
        key, member, src = b.eval(
            f"(() => {{ const im = document.querySelectorAll('img.shard-image')[{i}];"
            " return [im.dataset.key, im.dataset.member, im.src]; })()")
        assert src.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == members[(key, member)]
    assert b.eval(LOADED)
    # every stand-in image is flagged (the Readability pages came without theirs);
    # the pages saved with their own images show them unflagged
    images = [im for m in metas for im in m["images"]]
    stand_ins = sum(bool(im.get("stand_in")) for im in images)
    own = [im for im in images if not im.get("stand_in")]
    assert 0 < stand_ins < n_images and own
    assert all(im["url"].startswith("https://scikit-image.org/docs/0.19.x/_images/") for im in own)
    assert b.eval("document.querySelectorAll('.flag.standin').length") == stand_ins
    flagged = b.eval("[...document.querySelectorAll('figure')].filter(f => f.querySelector('.flag.standin'))"
                     ".map(f => f.querySelector('img').dataset.key + '.' + f.querySelector('img').dataset.member)")
    want = [f"{m_key}.{j}.jpg" for m_key, m in ((k, json.loads(v)) for (k, mem), v in members.items()
                                                 if mem == "json") for j, im in enumerate(m["images"])
            if im.get("stand_in")]
    assert sorted(flagged) == sorted(want)
    assert b.errors == []


def test_m3w_page_filters_agree_with_the_servers_rules(bundled_outputs, tmp_path, browser):
    out = bundled_outputs["m3w"]
    corpus = Corpus(str(out))
    b = _open(browser, _page(tmp_path, out).as_uri())
    langs = list(corpus.summary()["languages"])
    cases = [("", ""), ("the", ""), ("https://", ""), ("no such words anywhere", ""),
             ("", langs[0]), ("a", langs[-1])]
    for q, lang in cases:
        want = corpus.matching(q=q, lang=lang)
        got = b.eval(f"Object.assign(browse.state, {{q: {json.dumps(q)}, lang: {json.dumps(lang)}, "
                     "offset: 0, random: null, limit: 1000}); browse.draw().then(() => "
                     "[...document.querySelectorAll('.sample')].map(e => e.dataset.key))")
        assert got == [corpus.samples[i].key for i in want], (q, lang)
    # the random sample is limit-sized, from the current filter, reproducible by seed
    one = b.eval("Object.assign(browse.state, {q: '', lang: '', limit: 10, random: 7}); "
                 "browse.draw().then(() => [...document.querySelectorAll('.sample')].map(e => e.dataset.key))")
    two = b.eval("browse.draw().then(() => [...document.querySelectorAll('.sample')].map(e => e.dataset.key))")
    assert one == two and len(one) == min(10, len(corpus.samples)) and len(set(one)) == len(one)
    corpus.close()
    assert b.errors == []


def test_dropped_tab_shows_the_victims_per_reason(bundled_outputs, tmp_path, browser):
    out = bundled_outputs["m3w"]
    index = json.loads((out / "dropped" / "index.json").read_text())
    counters = json.loads((out / "stats.json").read_text())["counters"]
    b = _open(browser, _page(tmp_path, out).as_uri())
    b.eval("browse.state.tab = 'dropped'; browse.state.limit = 100; browse.draw().then(() => true)")
    buttons = b.eval("[...document.querySelectorAll('.reasons button[data-reason]')]"
                     ".map(e => [e.dataset.reason, e.textContent])")
    assert [r for r, _ in buttons] == sorted(index["reasons"])
    for reason, text in buttons:
        assert text.startswith(f"{reason} {counters['drop_' + reason]:,}")
    reason = max(index["reasons"], key=lambda r: index["reasons"][r]["kept"])
    shown = b.eval(f"browse.state.reason = {json.dumps(reason)}; browse.draw().then(() => "
                   "[...document.querySelectorAll('.victim')].map(e => e.dataset.reason))")
    assert shown == [reason] * min(100, index["reasons"][reason]["kept"])
    assert b.errors == []


def test_served_page_pages_through_the_same_corpus_and_media(bundled_outputs, browser):
    out = bundled_outputs["m3w"]
    members, metas = _expected(out)
    corpus = Corpus(str(out))
    server = make_server(corpus, 0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        b = _open(browser, f"http://127.0.0.1:{port}/")
        n_images = sum(len(m["images"]) for m in metas)
        assert b.eval("document.getElementById('count').textContent") == \
            f"{len(metas)} documents · {n_images} images"
        keys = []
        pages = 0
        while True:
            keys += b.eval("[...document.querySelectorAll('.sample')].map(e => e.dataset.key)")
            pages += 1
            if b.eval("document.getElementById('next').disabled"):
                break
            b.eval("document.getElementById('next').click(); browse.last.then(() => true)")
        assert sorted(keys) == sorted(s.key for s in corpus.samples) and len(keys) == len(metas)
        assert pages == -(-len(metas) // 20)
        key, member, src = b.eval("(() => { const im = document.querySelector('img.shard-image');"
                                  " return [im.dataset.key, im.dataset.member, im.src]; })()")
        with urllib.request.urlopen(src, timeout=10) as r:
            assert r.read() == members[(key, member)]
        # only corpus members are served
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/media/s/0/0/0/100", timeout=10)
        assert b.eval(LOADED)  # every image of the page decodes from the server
        assert b.errors == []
    finally:
        browser.open("about:blank")  # nothing still loading when the server stops
        server.shutdown()
        server.server_close()
        corpus.close()


def test_pairs_grid_with_subsets_and_caption_sources(bundled_outputs, tmp_path, browser):
    out = bundled_outputs["pairs"]
    members, metas = _expected(out)
    b = _open(browser, _page(tmp_path, out).as_uri())
    assert b.eval("document.getElementById('count').textContent") == \
        f"{len(metas)} pairs · {len(metas)} images"
    assert b.eval("[...document.getElementById('set').options].map(o => o.value)") == ["", "align", "ltip"]
    n_alt = sum(m["caption_source"] == "alt" for m in metas)
    got = b.eval("Object.assign(browse.state, {set: 'align', limit: 1000}); browse.draw().then(() => "
                 "[...document.querySelectorAll('.sample .tok.img')].map(e => e.textContent))")
    assert got == ["alt"] * n_alt
    got = b.eval("Object.assign(browse.state, {set: '', source: 'figcaption'}); browse.draw().then(() => "
                 "document.querySelectorAll('.grid .sample').length)")
    assert got == sum(m["caption_source"] == "figcaption" for m in metas)
    src = b.eval("document.querySelector('.grid img.shard-image').src")
    key = b.eval("document.querySelector('.grid img.shard-image').dataset.key")
    assert base64.b64decode(src.split(",", 1)[1]) == members[(key, "jpg")]
    assert b.errors == []


def test_videos_strips_show_every_frame(bundled_outputs, tmp_path, browser):
    out = bundled_outputs["videos"]
    members, metas = _expected(out)
    b = _open(browser, _page(tmp_path, out).as_uri())
    n_frames = sum(len(m["frame_times"]) for m in metas)
    assert b.eval("document.getElementById('count').textContent") == \
        f"{len(metas)} videos · {n_frames} frames"
    assert b.eval("document.querySelectorAll('.strip img').length") == n_frames
    flagged = sum(bool(m.get("stand_in")) for m in metas)
    assert flagged >= 1  # the clips archived at the real pages' video URLs
    assert b.eval("document.querySelectorAll('.flag.standin').length") == flagged
    key, member, src = b.eval("(() => { const im = document.querySelectorAll('.strip img')[1];"
                              " return [im.dataset.key, im.dataset.member, im.src]; })()")
    assert hashlib.sha256(base64.b64decode(src.split(",", 1)[1])).digest() == \
        hashlib.sha256(members[(key, member)]).digest()
    assert b.errors == []


def test_cli_writes_one_file_and_rejects_what_is_not_an_output(bundled_outputs, tmp_path, capsys):
    out = tmp_path / "b.html"
    assert main([str(bundled_outputs["videos"]), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    # self-contained: nothing is fetched from anywhere
    assert "http://" not in html.split("<script id=\"boot\"")[0]
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no manifest.json" in err[0]


def test_cli_names_the_closest_option(bundled_outputs, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(bundled_outputs["videos"]), "--serv"])
    assert e.value.code == 2
    assert "unknown option '--serv'; did you mean --serve?" in capsys.readouterr().err


def test_dedup_tags_are_shown_on_their_images_and_documents(tmp_path, browser):
    """An output written with --dedup-action tag: the tagged image and text say
    which eval item they matched."""
    from shards.schema import build_m3w_sample
    from shards.writer import write_manifest, write_shard
    from tests.data_paths import IMAGES

    match = {"eval_set": "coco_captions", "split": "val2014", "item_id": "391895", "kind": "image",
             "distance": 2, "eval_ref": "COCO_val2014_000000391895.jpg", "detail": "view:orig"}
    jpeg = (IMAGES / "china.jpg").read_bytes()
    image = {"url": "http://h/a.jpg", "alt": "a", "title": None, "caption": None, "sha256": "0",
             "phash": "0", "width": 640, "height": 427, "via": "warc"}
    meta = {"text": "A temple by the lake.<EOC><image>Another view.<EOC><image><EOC>", "url": "http://h/",
            "title": "t", "source": {"file": "x", "offset": 0}, "lang": "en", "num_words": 6,
            "images": [dict(image, eval_matches=[match]), dict(image, url="http://h/b.jpg")],
            "eval_text_matches": [dict(match, kind="text", item_id="42")]}
    out = tmp_path / "out"
    write_shard(str(out), "m3w", 0, [build_m3w_sample("k" * 24, meta, [jpeg, jpeg])], "run")
    write_manifest(str(out), "m3w", "run", {}, {})
    b = _open(browser, _page(tmp_path, out).as_uri())
    flags = b.eval("[...document.querySelectorAll('.flag.eval')].map(e => e.textContent)")
    assert flags == ["text matches an eval set: coco_captions/val2014 42",
                     "eval match: coco_captions/val2014 391895 (image, 2 bits)"]
    assert b.eval("document.querySelectorAll('figure')[0].contains(document.querySelectorAll('.flag.eval')[1])")
    assert b.errors == []
