"""hdl-monai sample MONAI Label app: serves the interpolation and phase-synthesis models over REST.

Start (see README.md)::

    monailabel start_server --app apps/monailabel --studies STUDIES \
        --conf interpolation_model runs/interp/model.pt --conf phase_model runs/phase/model.pt
"""

from __future__ import annotations

import logging
import os
from typing import Any

from lib.hdl_infer import InterpolationInferTask, PhaseSynthesisInferTask
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask

logger = logging.getLogger(__name__)


class HDLApp(MONAILabelApp):
    """Infer tasks ``hdl_interpolation`` and ``hdl_phase_synthesis`` for models named in ``--conf``
    (``interpolation_model``, ``phase_model``: paths to the bundles' ``model.pt``; a task whose model is
    not given or missing is not offered). Optional ``--conf K 2`` sets the default interpolation gap."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        self.model_paths = {
            "hdl_interpolation": conf.get("interpolation_model", ""),
            "hdl_phase_synthesis": conf.get("phase_model", ""),
        }
        self.default_K = int(conf.get("K", 2))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="hdl-monai",
            description="HDL digital twin of myocardial velocity mapping: temporal interpolation and phase synthesis",
            version="0.1.0",
        )

    def init_infers(self) -> dict[str, InferTask]:
        tasks: dict[str, Any] = {}
        path = self.model_paths["hdl_interpolation"]
        if path and os.path.isfile(path):
            tasks["hdl_interpolation"] = InterpolationInferTask(path, K=self.default_K)
        path = self.model_paths["hdl_phase_synthesis"]
        if path and os.path.isfile(path):
            tasks["hdl_phase_synthesis"] = PhaseSynthesisInferTask(path)
        for name, path in self.model_paths.items():
            if name not in tasks:
                logger.warning(f"{name}: no model ({path or 'not configured'}); task not offered")
        return tasks
