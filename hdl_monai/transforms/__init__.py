"""MONAI transforms for HDL: LV ROI crop, normalisation, foreground/weight maps, temporal stacking.

Array versions live in :mod:`hdl_monai.transforms.array`, dictionary versions (for ``Compose``) in
:mod:`hdl_monai.transforms.dictionary`; both are re-exported here. See the array module docstring for
the series layout, value scales and the temporal condition-map encoding.
"""

from __future__ import annotations

from hdl_monai.transforms import array as _array
from hdl_monai.transforms import dictionary as _dictionary
from hdl_monai.transforms.array import *  # noqa: F401,F403
from hdl_monai.transforms.dictionary import *  # noqa: F401,F403

__all__ = list(_array.__all__) + list(_dictionary.__all__)
