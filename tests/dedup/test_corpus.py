import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from dedup.corpus import FrequentImages, ImageFrequency, NearDupDocs, near_duplicate_keys
from dedup.fingerprints import phash64
from PIL import Image

from .conftest import DATA


def test_image_frequency_combine_and_frequent_images():
    logo = phash64(Image.open(DATA / "images" / "logo.png"))
    cat = phash64(Image.open(DATA / "images" / "chelsea.png"))
    pairs = [(logo, f"doc{i}") for i in range(12)] + [(logo, "doc0")] + [(cat, f"doc{i}") for i in range(10)]
    with TestPipeline() as p:
        pc = p | beam.Create(pairs)
        counts = pc | "c" >> beam.CombinePerKey(ImageFrequency(10)) | beam.MapTuple(lambda k, v: (k, v[0]))
        assert_that(counts, equal_to([(logo, 11), (cat, 10)]), label="counts")
        assert_that(pc | FrequentImages(10), equal_to([logo]), label="frequent")


def _docs():
    base = ("The Flamingo model was trained on a mixture of interleaved web documents, image text pairs "
            "and video text pairs, and it learns new tasks from a handful of examples in its prompt.")
    return [("a", base), ("b", base.upper().replace(",", " ;")),
            ("f", base.replace("handful", "few")),
            ("c", base + " Subscribe now."),   # f: 5 of ~38 shingles differ, Jaccard ~0.74 < 0.8
            ("d", "A completely different page about baking sourdough bread at home with a cast iron pot "
                  "and a long cold fermentation in the fridge overnight."),
            ("e", "")]


def test_near_duplicate_docs_in_memory():
    assert near_duplicate_keys(_docs()) == {"b", "c"}


def test_near_duplicate_docs_beam_matches_in_memory():
    with TestPipeline() as p:
        out = p | beam.Create(_docs()) | NearDupDocs()
        assert_that(out, equal_to(sorted(near_duplicate_keys(_docs()))))
