"""Conditional GAN (pix2pix) trainer for HDL phase synthesis (Xing et al. 2022, section III-B).

One Ignite iteration of :class:`Pix2PixTrainer` is

1. a **generator step**: ``fake = G(condition)``, then
   ``g_loss = adv(D(cat(fake, condition)) -> real) + lambda_l1 * L1(fake, phase)``, Adam step on G
   (the discriminator's parameters are frozen during this step);
2. a **discriminator step**: ``d_loss = 0.5 * (adv(D(cat(phase, condition)) -> real)
   + adv(D(cat(fake.detach(), condition)) -> fake))``, Adam step on D.

``condition`` is the magnitude triplet (M_(t-1), M_t, M_(t+1)), ``phase`` the target (P_x, P_y, P_z) at t,
all normalised to [-1, 1]. The adversarial criterion is least squares (LSGAN, MONAI
``PatchAdversarialLoss(criterion="least_squares")``) on the raw patch scores.

Schemes (``scheme``):

- ``"foreground_background"`` (the paper's proposal): the generator only paints the foreground
  (normalised magnitude of frame t > -0.95); the background is Gaussian noise drawn at inference
  (:mod:`hdl_monai.phase_synthesis`). In training the L1 term is restricted to the foreground (the weight
  maps w1 and w2 are multiplied by the foreground mask) and the discriminator sees real and fake phase
  with the background zeroed, so neither loss asks the generator to reproduce noise.
- ``"vanilla"`` (an ablation of the split alone): no split; L1 weighted by w1 and w2 on the whole image
  (the background counts :data:`~hdl_monai.transforms.array.WEIGHT_OUTSIDE`, 0.1) and the
  discriminator sees the whole image.
- ``"pix2pix"`` (the paper's baseline, "vanilla pix2pix", which validates the weighted loss and the split
  together, section IV-D): no split and no weight maps; L1 is the plain mean ``mean(|fake - phase|)``
  over the whole image, and the discriminator sees the whole image.

The L1 term is the weighted MAE of eq. (1), ``mean(w1 * |fake - phase|) + mean(w2 * |fake - phase|)``
(:class:`hdl_monai.losses.WeightedMAELoss`), plus, with ``myocardium_weight`` > 0,
``myocardium_weight * mean(myo * |fake - phase|)`` on the LV myocardium mask ``myo`` (label 1) of the batch:
w1 covers the whole LV region, where the blood pool's large flow phase outweighs the myocardium's few
cm/s, so this term puts the velocities the assessment reads back in front.

``engine.state.output`` after each iteration holds detached tensors ``"g_loss"`` (total generator loss),
``"adv"`` (its adversarial part), ``"l1"`` (the weighted L1, before ``lambda_l1``), ``"d_loss"``,
``"loss"`` (= ``g_loss``, for MONAI's default handlers), plus ``"image"`` (condition), ``"label"``
(phase) and ``"pred"`` (raw generator output).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.engines import Trainer
from monai.engines.workflow import Workflow
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from torch.optim.optimizer import Optimizer

from hdl_monai.losses import WeightedMAELoss
from hdl_monai.transforms.array import FOREGROUND_THRESHOLD

__all__ = [
    "SCHEMES",
    "PAPER_LEARNING_RATE",
    "PIX2PIX_BETAS",
    "PIX2PIX_LAMBDA_L1",
    "build_patch_discriminator",
    "patch_logits",
    "prepare_phase_batch",
    "check_scheme",
    "paints_whole_image",
    "phase_l1_loss",
    "Pix2PixTrainer",
    "checkpoint_dict",
]

SCHEMES = ("foreground_background", "vanilla", "pix2pix")
"""Training schemes: the paper's proposal, the split-only ablation and the paper's vanilla pix2pix."""
PAPER_LEARNING_RATE = 0.002
"""Adam learning rate of the phase module (paper, section IV-B)."""
PIX2PIX_BETAS = (0.5, 0.999)
"""Adam betas of pix2pix (Isola et al. 2017)."""
PIX2PIX_LAMBDA_L1 = 100.0
"""Weight of the L1 term in pix2pix."""


def build_patch_discriminator(
    in_channels: int = 6,
    channels: int = 64,
    num_layers_d: int = 4,
    kernel_size: int = 3,
    norm: str | tuple = "BATCH",
    spatial_dims: int = 2,
) -> PatchDiscriminator:
    """The PatchGAN discriminator of the phase module: MONAI ``PatchDiscriminator`` on (phase, magnitude).

    The paper asks for "a PatchGAN discriminator with four convolutional blocks ... the patch size is
    16 x 16" at 256 x 256 input. We read "patch size 16 x 16" as a **16 x 16 grid of patch scores** at
    256 x 256, i.e. one score per 16 x 16-pixel block (output stride 16): with ``kernel_size=3`` (padding 1)
    every stride-2 convolution halves the size exactly, and ``num_layers_d=4`` gives four stride-2 blocks
    (the initial convolution and three of MONAI's layers: 256 -> 128 -> 64 -> 32 -> 16), then one stride-1
    block and the 1-channel score head, both size-preserving. Each score's receptive field is 95 pixels.
    (The other reading, the pix2pix "16 x 16 PatchGAN" whose receptive field is 16 pixels, is
    ``num_layers_d=1, kernel_size=4``: a 126 x 126 grid at 256; it is a configuration of this same function.)
    The grid is ``roi / 16`` for any ROI divisible by 16 (8 x 8 at 128).

    Args:
        in_channels: 6 = phase (3) + magnitude triplet (3).
        channels: filters of the first layer, doubled per layer (64 in pix2pix).
        num_layers_d: MONAI ``num_layers_d`` (layers after the initial convolution; the last has stride 1).
        kernel_size: convolution kernel (3 keeps the grid an exact power-of-two fraction of the input).
        norm: normalisation of the inner layers.
        spatial_dims: 2.
    """
    return PatchDiscriminator(
        spatial_dims=spatial_dims,
        channels=channels,
        in_channels=in_channels,
        out_channels=1,
        num_layers_d=num_layers_d,
        kernel_size=kernel_size,
        norm=norm,
        padding=(kernel_size - 1) // 2,
        last_conv_kernel_size=kernel_size,
    )


def patch_logits(output: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The patch scores (B, 1, gx, gy) of a discriminator output (MONAI's returns all features; the last)."""
    return output[-1] if isinstance(output, (list, tuple)) else output


def prepare_phase_batch(
    batchdata: Mapping[str, Any], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(magnitude_triplet, phase)`` of a collated phase-synthesis batch on ``device`` (MONAI prepare_batch)."""
    if not isinstance(batchdata, Mapping) or "magnitude_triplet" not in batchdata:
        raise ValueError("a phase-synthesis batch is a dict with 'magnitude_triplet' (B, 3, X, Y) and 'phase'")
    image = torch.as_tensor(batchdata["magnitude_triplet"]).to(device=device, non_blocking=non_blocking, **kwargs)
    phase = batchdata.get("phase")
    if phase is not None:
        phase = torch.as_tensor(phase).to(device=device, non_blocking=non_blocking, **kwargs)
    return image, phase


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is one of :data:`SCHEMES`, else a ValueError naming them."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


def paints_whole_image(scheme: str) -> bool:
    """Whether a model of ``scheme`` paints the whole ROI (no foreground-background split)."""
    return check_scheme(scheme) != "foreground_background"


def phase_l1_loss(
    fake: torch.Tensor,
    phase: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    foreground: torch.Tensor | None = None,
    mae: Callable | None = None,
) -> torch.Tensor:
    """Weighted L1 of the phase module: eq. (1) with w1 and w2, restricted to ``foreground`` when given.

    All (B, C, X, Y) or (B, 1, X, Y) (weights broadcast over the three phase channels); with ``foreground``
    (the foreground-background scheme) the weights are multiplied by it, so background pixels count 0.
    """
    if foreground is not None:
        w1, w2 = w1 * foreground, w2 * foreground
    return (mae or WeightedMAELoss())(fake, phase, w1, w2)


class Pix2PixTrainer(Trainer):
    """pix2pix trainer with a magnitude-conditioned PatchGAN discriminator (see the module docstring).

    Args:
        device: where to train.
        max_epochs: epochs to run.
        train_data_loader: batches of dicts with ``condition_key`` (B, 3, X, Y), ``target_key`` (B, 3, X, Y),
            ``w1_key``, ``w2_key`` (B, 1, X, Y) and, for the foreground-background scheme, ``foreground_key``
            (B, 1, X, Y) (computed from the condition's middle frame when absent).
        generator: phase generator (R2U-Net, 3 -> 3 channels, tanh output).
        discriminator: patch discriminator on ``cat(phase, condition)`` (6 channels).
        g_optimizer / d_optimizer: their optimisers (the paper: Adam, lr 0.002; pix2pix betas (0.5, 0.999)).
        lambda_l1: weight of the L1 term (100 in pix2pix).
        scheme: one of :data:`SCHEMES` (module docstring).
        adversarial_loss: criterion ``(logits, target_is_real, for_discriminator) -> loss``; default
            ``PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)`` (plain LSGAN:
            MONAI's default would pass the scores through a leaky ReLU first).
        l1_loss: weighted MAE ``(pred, target, w1, w2) -> loss`` (default :class:`WeightedMAELoss`).
        myocardium_weight: weight of the extra L1 term on the myocardium mask (``myocardium_key``, needed in
            the batch when > 0); 0 = the paper's loss.
        threshold: foreground threshold on the normalised magnitude (-0.95).
        epoch_length: iterations per epoch (default ``len(train_data_loader)``).
        non_blocking, prepare_batch: as in MONAI trainers (prepare_batch returns ``(condition, phase)``).
        train_handlers: Ignite handlers with ``attach`` (stats, checkpoints, validation, ...).
        amp: mixed precision (``torch.autocast`` + one ``GradScaler`` per network) when the device is CUDA;
            ignored on the CPU.
        amp_kwargs: extra ``torch.autocast`` arguments.
        condition_key, target_key, w1_key, w2_key, foreground_key, myocardium_key: batch keys.
        optim_set_to_none: ``zero_grad(set_to_none=...)``.

    ``state_dict()``/``load_state_dict()`` cover the Ignite counters (iteration, epoch); save the networks and
    optimisers alongside (see :func:`checkpoint_dict`) to resume.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        generator: nn.Module,
        discriminator: nn.Module,
        g_optimizer: Optimizer,
        d_optimizer: Optimizer,
        lambda_l1: float = PIX2PIX_LAMBDA_L1,
        scheme: str = "foreground_background",
        adversarial_loss: Callable | None = None,
        l1_loss: Callable | None = None,
        myocardium_weight: float = 0.0,
        threshold: float = FOREGROUND_THRESHOLD,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable = prepare_phase_batch,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        amp_kwargs: dict | None = None,
        condition_key: str = "magnitude_triplet",
        target_key: str = "phase",
        w1_key: str = "w1",
        w2_key: str = "w2",
        foreground_key: str = "foreground",
        myocardium_key: str = "myocardium",
        optim_set_to_none: bool = True,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            handlers=train_handlers,
            amp=amp,
            decollate=False,
            amp_kwargs=amp_kwargs,
        )
        self.scheme = check_scheme(scheme)
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.lambda_l1 = float(lambda_l1)
        self.adversarial_loss = adversarial_loss or PatchAdversarialLoss(
            criterion="least_squares", no_activation_leastsq=True
        )
        self.l1_loss = l1_loss or WeightedMAELoss()
        self.myocardium_weight = float(myocardium_weight)
        if self.myocardium_weight < 0:
            raise ValueError(f"myocardium_weight must be >= 0, got {myocardium_weight}")
        self.myocardium_key = myocardium_key
        self.threshold = float(threshold)
        self.keys = {"condition": condition_key, "target": target_key, "w1": w1_key, "w2": w2_key}
        self.foreground_key = foreground_key
        self.optim_set_to_none = optim_set_to_none
        self.g_scaler: torch.amp.GradScaler | None = None
        self.d_scaler: torch.amp.GradScaler | None = None

    @property
    def uses_amp(self) -> bool:
        """Whether mixed precision is really on (``amp`` and a CUDA device)."""
        return bool(self.amp) and torch.device(self.state.device).type == "cuda"

    def run(self) -> None:  # type: ignore[override]
        """Train; a second call continues from the current state (as MONAI's trainers do)."""
        if self.uses_amp and self.g_scaler is None:
            self.g_scaler, self.d_scaler = torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda")
        self.scaler = None
        Workflow.run(self)  # Trainer.run would create a deprecated torch.cuda.amp scaler

    # ------------------------------------------------------------------------------------------ pieces

    def _batch_map(self, batchdata: Mapping[str, Any], key: str, like: torch.Tensor) -> torch.Tensor:
        if key not in batchdata:
            raise KeyError(f"Pix2PixTrainer: the batch has no {key!r} (WeightMapsd + PhaseSampled provide it)")
        return torch.as_tensor(batchdata[key]).to(device=like.device, dtype=like.dtype, non_blocking=self.non_blocking)

    def foreground(self, batchdata: Mapping[str, Any], condition: torch.Tensor) -> torch.Tensor:
        """The (B, 1, X, Y) foreground from the batch, or from the condition's middle frame (M_t)."""
        if self.foreground_key in batchdata:
            return self._batch_map(batchdata, self.foreground_key, condition)
        return (condition[:, 1:2] > self.threshold).to(condition.dtype)

    def discriminate(self, phase: torch.Tensor, condition: torch.Tensor, foreground: torch.Tensor | None) -> torch.Tensor:
        """Patch scores of D on (phase, condition); the background is zeroed in the foreground scheme."""
        if foreground is not None:
            phase = phase * foreground
        return patch_logits(self.discriminator(torch.cat([phase, condition], dim=1)))

    def _autocast(self):
        return torch.autocast("cuda", **self.amp_kwargs) if self.uses_amp else torch.autocast("cpu", enabled=False)

    @staticmethod
    def _step(loss: torch.Tensor, optimizer: Optimizer, scaler: torch.amp.GradScaler | None) -> None:
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    # ------------------------------------------------------------------------------------------ iteration

    def _iteration(self, engine: Pix2PixTrainer, batchdata: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        condition, phase = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking)
        if phase is None:
            raise KeyError(f"Pix2PixTrainer: the batch has no target phase {engine.keys['target']!r}")
        w1 = engine._batch_map(batchdata, engine.keys["w1"], condition)
        w2 = engine._batch_map(batchdata, engine.keys["w2"], condition)
        fg = engine.foreground(batchdata, condition) if engine.scheme == "foreground_background" else None
        G, D = engine.generator, engine.discriminator

        # generator step (D frozen; a DistributedDataParallel D is not, its reducer expects every gradient,
        # and the stray D gradients are cleared before the D step anyway)
        G.train()
        D.train()
        freeze = not isinstance(D, nn.parallel.DistributedDataParallel)
        if freeze:
            D.requires_grad_(False)
        engine.g_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast():
            fake = G(condition)
            adv = engine.adversarial_loss(
                engine.discriminate(fake, condition, fg), target_is_real=True, for_discriminator=False
            )
            if engine.scheme == "pix2pix":
                l1 = (fake.float() - phase).abs().mean()
            else:
                l1 = phase_l1_loss(fake.float(), phase, w1, w2, fg, engine.l1_loss)
            if engine.myocardium_weight > 0:
                myo = engine._batch_map(batchdata, engine.myocardium_key, condition)
                l1 = l1 + engine.myocardium_weight * (myo * (fake.float() - phase).abs()).mean()
            g_loss = adv + engine.lambda_l1 * l1
        engine._step(g_loss, engine.g_optimizer, engine.g_scaler)
        if freeze:
            D.requires_grad_(True)

        # discriminator step (real pairs vs detached fake pairs)
        engine.d_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast():
            real_logits = engine.discriminate(phase, condition, fg)
            fake_logits = engine.discriminate(fake.detach(), condition, fg)
            d_loss = 0.5 * (
                engine.adversarial_loss(real_logits, target_is_real=True, for_discriminator=True)
                + engine.adversarial_loss(fake_logits, target_is_real=False, for_discriminator=True)
            )
        engine._step(d_loss, engine.d_optimizer, engine.d_scaler)

        engine.state.output = {
            "g_loss": g_loss.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "d_loss": d_loss.detach(),
            "loss": g_loss.detach(),
            "image": condition,
            "label": phase,
            "pred": fake.detach(),
        }
        return engine.state.output


def checkpoint_dict(
    trainer: Pix2PixTrainer | None = None,
    generator: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    g_optimizer: Optimizer | None = None,
    d_optimizer: Optimizer | None = None,
) -> dict[str, Any]:
    """The save/load dict for MONAI ``CheckpointSaver``/``CheckpointLoader``: both networks, both optimisers
    and the trainer (its iteration and epoch); the parts default to the trainer's own."""
    if trainer is not None:
        generator = generator or trainer.generator
        discriminator = discriminator or trainer.discriminator
        g_optimizer = g_optimizer or trainer.g_optimizer
        d_optimizer = d_optimizer or trainer.d_optimizer
    parts = {
        "generator": generator,
        "discriminator": discriminator,
        "g_optimizer": g_optimizer,
        "d_optimizer": d_optimizer,
        "trainer": trainer,
    }
    return {k: v for k, v in parts.items() if v is not None}
