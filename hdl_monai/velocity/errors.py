"""The error raised when velocities cannot be assessed (a ``CaseError``, so the CLI prints it as one line)."""

from __future__ import annotations

from hdl_monai.data.case import CaseError

__all__ = ["VelocityError"]


class VelocityError(CaseError):
    """Velocity assessment refused: the message names the case (where known) and the frame."""
