"""pipeline.documents: how a long page is cut into M3W documents when every
document needs an image (doc_min_images, 1 in the M3W job)."""
from __future__ import annotations

from pipeline.documents import split_document
from tests.pipeline.test_extract import dev_candidate


def test_cut_points_follow_the_images_when_parts_need_one():
    nodes = [{"text": f"t{i}"} for i in range(7)]
    counts = [800, 800, None, None, 800, 800, 800]
    # Balanced by words (no image minimum): the last two parts have no image.
    assert split_document(nodes, counts, 2000, 30) == [nodes[:4], nodes[4:6], nodes[6:]]
    # With one image a part: each image leads or closes a part of its own,
    # 3,200 of the 4,000 words are in parts with an image instead of 1,600.
    assert split_document(nodes, counts, 2000, 30, 1) == [nodes[:3], nodes[3:6], nodes[6:]]
    # Balanced parts that already have their images are left as they are.
    nodes = [{"text": f"t{i}"} for i in range(8)]
    counts = [None, 500, 500, 500, 500, 500, 500, None]
    assert split_document(nodes, counts, 2000, 30, 1) == [nodes[:4], nodes[4:]]
    # ... and one that has not is cut again: 2,000 words with the image
    # instead of 1,500.
    assert split_document(nodes[:7], counts[:7], 2000, 30) == [nodes[:4], nodes[4:7]]
    assert split_document(nodes[:7], counts[:7], 2000, 30, 1) == [nodes[:5], nodes[5:7]]
    # No image at all: nothing to keep, the balanced cut stands.
    counts = [1500, 1500, 1500]
    assert split_document(nodes[:3], counts, 2000, 30, 1) == [nodes[:1], nodes[1:2], nodes[2:3]]


def test_a_long_article_with_two_pictures_keeps_both_parts():
    # readability/blogger: 2,391 words, its two pictures in the first half.
    # Cut in halves, the second half (1,187 words) had no picture and was
    # dropped by doc_min_images=1; cut around the pictures, both parts keep
    # one each and every word reaches the shards.
    halves = dev_candidate("blogger", doc_min_images=0).values()
    assert [(d["num_words"], sum("image" in n for n in d["nodes"])) for d in halves] == [
        (1204, 2), (1187, 0)]
    out = dev_candidate("blogger", doc_min_images=1)
    parts = out.values()
    assert [(d["num_words"], d["part"], sum("image" in n for n in d["nodes"])) for d in parts] == [
        (452, [0, 2], 1), (1939, [1, 2], 1)]
    assert "document_too_few_images" not in out.drops
