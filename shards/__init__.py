"""The sample schema per kind, the shard writer, reader, manifest and validation."""
import logging


class _DropBeamImportNoise(logging.Filter):
    # Beam logs this on the root logger at import time when the optional GCP
    # extras are absent (we import its FileSystems); noise for every user not
    # on Google Cloud.
    def filter(self, record):
        return "apitools not found" not in str(record.msg)


logging.getLogger().addFilter(_DropBeamImportNoise())
