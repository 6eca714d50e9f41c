"""Deterministic, realistic source data for the demo tenant, Tỉnh Ninh Bình (see `generate`)."""

from pipelines.demo.faults import FAULTS, planted_faults
from pipelines.demo.generate import generate

__all__ = ["FAULTS", "generate", "planted_faults"]
