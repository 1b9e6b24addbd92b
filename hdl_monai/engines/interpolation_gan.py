"""Adversarial training of the temporal-interpolation network: the GAN baseline of HDL's Table III.

:class:`InterpolationGANTrainer` is MONAI's ``SupervisedTrainer`` with an optional PatchGAN
discriminator D. Without one it *is* ``SupervisedTrainer`` (the bundle's default, ``"gan": false``).
With one, an Ignite iteration is

1. a **generator step**: ``pred = G(x)``, then
   ``loss = packed_loss(pred, target) + adv_weight * adv(D(cat(pred_magnitude, c)) -> real)``, optimiser
   step on G (D's parameters are frozen during this step);
2. a **discriminator step**: ``d_loss = 0.5 * (adv(D(cat(target_magnitude, c)) -> real)
   + adv(D(cat(pred_magnitude.detach(), c)) -> fake))``, optimiser step on D.

``x`` is the network input of :class:`~hdl_monai.engines.interpolation.InterpolationPrepareBatch`,
``[M_tau, M_tau+K+1 | S_tau, S_tau+K+1 | tau/T, k/(K+1), K/K_max]``; ``c`` conditions D on the
magnitude pair and the condition planes (the mask pair is left out), so D judges whether a magnitude
frame fits between the two kept frames at that (tau, k, K). D sees the magnitude channel only, never
the segmentation logit; the packed loss (weighted MAE + Dice) trains the mask as in the plain network.
Magnitudes are normalised to [-1, 1]. The adversarial criterion is least squares (LSGAN) on the raw
patch scores, as in :class:`~hdl_monai.engines.pix2pix.Pix2PixTrainer`; ``adv_weight`` 0.01 is pix2pix's
ratio of 1 to lambda_L1 = 100 between the adversarial and the L1 terms.

``engine.state.output`` keeps SupervisedTrainer's keys, ``"image"``, ``"label"`` (packed target),
``"pred"`` and ``"loss"`` (the total generator loss), and with a discriminator adds detached
``"supervised"`` (the packed loss alone), ``"adv"`` (before ``adv_weight``) and ``"d_loss"``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from monai.utils import CommonKeys as Keys
from torch.optim.optimizer import Optimizer

from hdl_monai.engines.interpolation import InterpolationModelSpec
from hdl_monai.engines.pix2pix import build_patch_discriminator, patch_logits

__all__ = ["DEFAULT_ADV_WEIGHT", "build_interpolation_discriminator", "frozen", "InterpolationGANTrainer"]

DEFAULT_ADV_WEIGHT = 0.01
"""Weight of the adversarial term next to the weighted MAE: pix2pix's 1 : lambda_L1 (100)."""


def build_interpolation_discriminator(
    spec: InterpolationModelSpec, channels: int = 64, num_layers_d: int = 4, kernel_size: int = 3
) -> PatchDiscriminator:
    """The PatchGAN discriminator of the GAN variant for a network of ``spec``: input = one magnitude
    frame + the magnitude pair (2) + the condition planes (3, or 2 with ``include_K=False``).

    Args:
        spec: the interpolation network's spec (for its condition planes).
        channels, num_layers_d, kernel_size: as :func:`~hdl_monai.engines.pix2pix.build_patch_discriminator`
            (one score per 16 x 16-pixel block with the defaults: an 8 x 8 grid at ROI 128).
    """
    return build_patch_discriminator(
        in_channels=1 + 2 + spec.condition_channels, channels=channels, num_layers_d=num_layers_d,
        kernel_size=kernel_size,
    )


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside the block; their ``requires_grad`` flags are restored
    after it. A DistributedDataParallel module is left alone: its reducer expects every gradient (the
    stray ones must then be cleared before the module's own optimiser step)."""
    if isinstance(module, nn.parallel.DistributedDataParallel):
        yield
        return
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _backward_and_step(
    loss: torch.Tensor,
    optimizer: Optimizer,
    scaler: torch.amp.GradScaler | None,
    after_backward: Callable[[], Any] | None = None,
) -> None:
    """``loss.backward()`` (scaled when ``scaler``), ``after_backward()``, then the optimiser step."""
    (loss if scaler is None else scaler.scale(loss)).backward()
    if after_backward is not None:
        after_backward()
    if scaler is None:
        optimizer.step()
        return
    scaler.step(optimizer)
    scaler.update()


class InterpolationGANTrainer(SupervisedTrainer):
    """``SupervisedTrainer`` for the interpolation network, adversarial when given a discriminator.

    Args:
        device, max_epochs, train_data_loader, network, optimizer, loss_function: as ``SupervisedTrainer``
            (network = the generator; loss_function = the supervised
            :class:`~hdl_monai.engines.interpolation.PackedInterpolationLoss`).
        discriminator: PatchGAN discriminator on ``cat(magnitude, magnitude pair, condition planes)``
            (:func:`build_interpolation_discriminator`); None = plain ``SupervisedTrainer``.
        d_optimizer: its optimiser (required with a discriminator).
        adv_weight: weight of the adversarial term in the generator loss.
        adversarial_loss: criterion ``(logits, target_is_real, for_discriminator) -> loss``; default
            ``PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)`` (plain LSGAN).
        magnitude_channels, mask_channels: the layout of the network input, magnitude pair first, then
            the mask pair (left out of D's conditioning), then the condition planes.
        kwargs: the other ``SupervisedTrainer`` arguments (``prepare_batch``, ``inferer``,
            ``train_handlers``, ``amp``, ``decollate``, ...). With a discriminator, ``amp`` uses one
            gradient scaler per network; ``accumulation_steps`` and ``compile`` are not supported.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Any,
        network: nn.Module,
        optimizer: Optimizer,
        loss_function: Callable,
        discriminator: nn.Module | None = None,
        d_optimizer: Optimizer | None = None,
        adv_weight: float = DEFAULT_ADV_WEIGHT,
        adversarial_loss: Callable | None = None,
        magnitude_channels: int = 2,
        mask_channels: int = 2,
        **kwargs: Any,
    ) -> None:
        if discriminator is not None:
            if d_optimizer is None:
                raise ValueError("InterpolationGANTrainer: a discriminator needs its d_optimizer")
            if kwargs.get("accumulation_steps", 1) != 1 or kwargs.get("compile", False):
                raise ValueError("InterpolationGANTrainer: no accumulation_steps or compile with a discriminator")
        super().__init__(device, max_epochs, train_data_loader, network, optimizer, loss_function, **kwargs)
        self.discriminator = discriminator
        self.d_optimizer = d_optimizer
        self.adv_weight = float(adv_weight)
        self.adversarial_loss = adversarial_loss or PatchAdversarialLoss(
            criterion="least_squares", no_activation_leastsq=True
        )
        self.magnitude_channels, self.mask_channels = int(magnitude_channels), int(mask_channels)
        self.d_scaler: torch.amp.GradScaler | None = None

    def run(self) -> None:  # type: ignore[override]
        """Train; a second call continues from the current state (as MONAI's trainers do)."""
        if self.discriminator is not None and self.amp and self.d_scaler is None:
            self.d_scaler = torch.amp.GradScaler("cuda")
        super().run()  # creates the generator's scaler (``self.scaler``) when amp

    # ------------------------------------------------------------------------------------------ pieces

    def discriminator_condition(self, inputs: torch.Tensor) -> torch.Tensor:
        """What D is conditioned on: the network input without its mask pair (magnitude pair + condition)."""
        m = self.magnitude_channels
        return torch.cat([inputs[:, :m], inputs[:, m + self.mask_channels :]], dim=1)

    def discriminate(self, magnitude: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Patch scores (B, 1, gx, gy) of D on one magnitude frame (B, 1, X, Y) and its conditioning."""
        return patch_logits(self.discriminator(torch.cat([magnitude, condition], dim=1)))

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", **self.amp_kwargs) if self.scaler is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------------------------------ iteration

    def _iteration(self, engine: InterpolationGANTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        if engine.discriminator is None:
            return super()._iteration(engine, batchdata)
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        inputs, targets = batch[:2]
        if targets is None:
            raise KeyError("InterpolationGANTrainer: the batch has no target (magnitude_target, mask_target, w1, w2)")
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets}
        condition = engine.discriminator_condition(inputs)
        engine.network.train()
        engine.discriminator.train()

        # generator step, D frozen (under DDP not, see ``frozen``: its gradients are cleared below)
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with frozen(engine.discriminator):
            with engine._autocast():
                pred = engine.inferer(inputs, engine.network)
                engine.state.output[Keys.PRED] = pred
                engine.fire_event(IterationEvents.FORWARD_COMPLETED)
                supervised = engine.loss_function(pred, targets).mean()
                fake_scores = engine.discriminate(pred[:, :1], condition)
                adv = engine.adversarial_loss(fake_scores, target_is_real=True, for_discriminator=False)
                loss = supervised + engine.adv_weight * adv
            engine.state.output[Keys.LOSS] = loss
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            after_backward = functools.partial(engine.fire_event, IterationEvents.BACKWARD_COMPLETED)
            _backward_and_step(loss, engine.optimizer, engine.scaler, after_backward)

        # discriminator step: real magnitude target vs the detached prediction, same conditioning
        engine.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast():
            real_logits = engine.discriminate(targets[:, :1], condition)
            fake_logits = engine.discriminate(pred[:, :1].detach(), condition)
            d_loss = 0.5 * (
                engine.adversarial_loss(real_logits, target_is_real=True, for_discriminator=True)
                + engine.adversarial_loss(fake_logits, target_is_real=False, for_discriminator=True)
            )
        _backward_and_step(d_loss, engine.d_optimizer, engine.d_scaler if engine.scaler is not None else None)

        parts = {Keys.LOSS: loss, "supervised": supervised, "adv": adv, "d_loss": d_loss}
        engine.state.output.update({k: v.detach() for k, v in parts.items()})
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
