"""Ignite metric handlers (MONAI ``IgniteMetricHandler``) for the HDL metrics, attachable to any ignite
``Engine`` or MONAI ``SupervisedEvaluator``/``SupervisedTrainer`` (``key_val_metric``/``additional_metrics``).

Each handler reads ``(y_pred, y)`` through ``output_transform`` (default: the engine output as is; use
``monai.handlers.from_engine(["pred", "label"])`` with MONAI workflows), accumulates per-sample values and
reports their mean; per-sample values go to ``engine.state.metric_details[name]`` when ``save_details``.
Data range for PSNR/SSIM defaults to 2.0 (images in [-1, 1]).

:class:`MSEWHandler` also needs the weight map: either ``output_transform`` returns ``(y_pred, y, w)``, or
``weight_key`` (or ``weight_transform``) takes it from ``engine.state.batch`` - the route for MONAI
evaluators, whose output holds only image, label and pred.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.engine import Engine
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import IgniteMetricHandler
from monai.metrics import MSEMetric, PSNRMetric

from hdl_monai.metrics.regression import DATA_RANGE, AdaptiveSSIMMetric, WeightedMSEMetric
from hdl_monai.metrics.segmentation import BinaryDiceMetric

__all__ = ["MSEHandler", "MSEWHandler", "PSNRHandler", "SSIMHandler", "DiceHandler"]


def _identity(x: Any) -> Any:
    return x


def _as_batch_tensor(x: Any) -> torch.Tensor:
    """A batch-first tensor from a tensor or a list of channel-first items (decollated engine data)."""
    if isinstance(x, (list, tuple)):
        return torch.stack([torch.as_tensor(i) for i in x])
    return torch.as_tensor(x)


class MSEHandler(IgniteMetricHandler):
    """Mean squared error (MONAI ``MSEMetric``) averaged over all samples of the epoch."""

    def __init__(self, output_transform: Callable = _identity, save_details: bool = True) -> None:
        super().__init__(metric_fn=MSEMetric(), output_transform=output_transform, save_details=save_details)


class PSNRHandler(IgniteMetricHandler):
    """PSNR in dB (MONAI ``PSNRMetric``) averaged over samples; ``data_range`` 2.0 for [-1, 1] images."""

    def __init__(
        self, data_range: float = DATA_RANGE, output_transform: Callable = _identity, save_details: bool = True
    ) -> None:
        super().__init__(
            metric_fn=PSNRMetric(max_val=data_range), output_transform=output_transform, save_details=save_details
        )


class SSIMHandler(IgniteMetricHandler):
    """SSIM (MONAI ``SSIMMetric``, window shrunk for small images) averaged over samples; 2-D by default."""

    def __init__(
        self,
        data_range: float = DATA_RANGE,
        win_size: int = 11,
        spatial_dims: int = 2,
        output_transform: Callable = _identity,
        save_details: bool = True,
    ) -> None:
        metric = AdaptiveSSIMMetric(spatial_dims=spatial_dims, data_range=data_range, win_size=win_size)
        super().__init__(metric_fn=metric, output_transform=output_transform, save_details=save_details)


class DiceHandler(IgniteMetricHandler):
    """Dice of binary masks (values > ``threshold``) averaged over samples; see ``BinaryDiceMetric``."""

    def __init__(
        self, threshold: float = 0.5, output_transform: Callable = _identity, save_details: bool = True
    ) -> None:
        super().__init__(
            metric_fn=BinaryDiceMetric(threshold), output_transform=output_transform, save_details=save_details
        )


class MSEWHandler(IgniteMetricHandler):
    """Weighted MSE (MSEW1/MSEW2): ``mean(w * (pred - target) ** 2)`` per sample, averaged over samples.

    Args:
        output_transform: engine output -> ``(y_pred, y)`` or ``(y_pred, y, w)``.
        weight_key: when set, ``w`` is ``engine.state.batch[weight_key]`` (or the list of it over a
            decollated batch), e.g. ``"w1"`` or ``"w2"``.
        weight_transform: alternatively a callable ``engine.state.batch -> w``.
        normalize: ``"pixels"`` (divide by N, default) or ``"weight"`` (divide by sum(w)).
        save_details: keep per-sample values in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        output_transform: Callable = _identity,
        weight_key: str | None = None,
        weight_transform: Callable | None = None,
        normalize: str = "pixels",
        save_details: bool = True,
    ) -> None:
        if weight_key is not None and weight_transform is not None:
            raise ValueError("give weight_key or weight_transform, not both")
        if weight_key is not None:
            weight_transform = _batch_item(weight_key)
        self.weight_transform = weight_transform
        super().__init__(
            metric_fn=WeightedMSEMetric(normalize), output_transform=output_transform, save_details=save_details
        )

    def iteration_completed(self, engine: Engine) -> None:
        output = self._output_transform(engine.state.output)
        if self.weight_transform is not None:
            output = (output[0], output[1], self.weight_transform(engine.state.batch))
        self.update(output)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """``output`` = ``(y_pred, y, w)``, batch-first tensors or lists of channel-first tensors."""
        if len(output) != 3:
            raise ValueError(
                f"MSEWHandler needs (y_pred, y, weight), got {len(output)} items: set weight_key or "
                "make output_transform return the weight map"
            )
        y_pred, y, w = (_as_batch_tensor(o) for o in output)
        self.metric_fn(y_pred, y.to(y_pred.device), weight=w.to(y_pred.device))


def _batch_item(key: str) -> Callable[[Any], Any]:
    def get(batch: Any) -> Any:
        if isinstance(batch, dict):
            return batch[key]
        if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], dict):
            return [item[key] for item in batch]
        raise ValueError(f"cannot take weight {key!r} from an engine batch of type {type(batch).__name__}")

    return get
