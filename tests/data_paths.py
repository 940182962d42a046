"""Where the bundled real sample data lives (see tests/data/PROVENANCE.md)."""
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
IMAGES = DATA / "images"
VIDEOS = DATA / "videos"
WARCS = DATA / "warc"
READABILITY = DATA / "html" / "readability"
EVALSETS = DATA / "evalsets"
