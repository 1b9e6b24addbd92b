"""The MONAI bundle metadata schema written for hdl-monai (``metadata_schema.json``), used offline by
``monai.bundle verify_metadata`` in place of the Model Zoo schema download (see docs/ecosystem.md)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["METADATA_SCHEMA"]

METADATA_SCHEMA = Path(__file__).with_name("metadata_schema.json")
"""Path of the locally written JSON schema (draft-07) of ``configs/metadata.json``."""
