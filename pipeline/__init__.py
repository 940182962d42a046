"""Beam jobs: readers, HTML → documents, filters, media, the m3w job."""
import logging


class _DropBeamImportNoise(logging.Filter):
    # Beam logs this on the root logger at import time when the optional GCP
    # extras are absent; it is noise for every user not on Google Cloud.
    def filter(self, record):
        return "apitools not found" not in str(record.msg)


logging.getLogger().addFilter(_DropBeamImportNoise())
