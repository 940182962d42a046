"""Beam jobs: readers, HTML → documents, filters, media, the m3w / pairs / videos jobs."""
import shards  # noqa: F401  (installs the Beam import-noise filter before Beam loads)
