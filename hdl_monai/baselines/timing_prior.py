"""A learned prior on how tissue moves between kept frames: the "learned" timing of the hybrid interpolation.

Down-sampling by K keeps every (K+1)-th frame; the flow between two kept frames says where the tissue went,
not when. The spline timing (:func:`~hdl_monai.baselines.optical_flow.spline_knot_velocities`) assumes the
path is smooth. This prior instead learns the path's shape from full-frame training series: the per-pixel
trajectories of one cardiac cycle (positions from the running sum of Horn-Schunck flows between consecutive
frames, the cycle's net drift removed) are summarised by their second-moment matrix over the frames of the
cycle. At inference the positions at all frames are predicted from those at the kept frames by the linear
least-squares (ridge) predictor that matrix defines: a Gaussian-process conditional mean whose covariance is
the training data's, so a fast early-diastolic recoil between two kept frames is placed where the training
cycles put it, not spread over the gap. Frame 0 must be the same cardiac phase (the trigger, end-diastole)
in training and use, as it is in gated cine.

A prior learned at M frames per cycle serves a series of any length T: the matrix is resampled to T frames by
periodic band-limited (Fourier) interpolation.

:class:`TimingPrior` (fit, save, load, :meth:`~TimingPrior.weights`), :func:`cycle_trajectories` and
:func:`periodic_positions`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdl_monai.data.atomic import atomic_write_json

__all__ = [
    "TIMING_PRIOR_FILE", "TimingPrior", "TimingPriorError", "cycle_trajectories", "fourier_resampler", "periodic_positions",
]

TIMING_PRIOR_FILE = "timing_prior.json"  # beside the interpolation model file it serves
_FORMAT = "hdl_monai.timing_prior.v1"


class TimingPriorError(ValueError):
    """A timing prior file that cannot be used (names the file and the problem)."""


def fourier_resampler(m: int, t: int) -> np.ndarray:
    """(t, m) matrix taking m samples of a periodic signal (at s / m of the cycle) to its band-limited
    interpolant at t samples (at j / t). Harmonics up to (m - 1) // 2 are kept (an even m's Nyquist term is
    dropped, as it has no unique continuation); ``fourier_resampler(m, m)`` is the identity for odd m."""
    if m < 1 or t < 1:
        raise ValueError(f"frame counts must be positive, got m={m}, t={t}")
    harmonics = np.arange(1, (m - 1) // 2 + 1)
    src = np.arange(m) / m
    dst = np.arange(t) / t
    # coefficients of a unit sample at s: a0 = 1/m, a_h = 2 cos(2 pi h s)/m, b_h = 2 sin(2 pi h s)/m
    cos_src, sin_src = np.cos(2 * np.pi * np.outer(harmonics, src)), np.sin(2 * np.pi * np.outer(harmonics, src))
    cos_dst, sin_dst = np.cos(2 * np.pi * np.outer(dst, harmonics)), np.sin(2 * np.pi * np.outer(dst, harmonics))
    return (1.0 + 2.0 * (cos_dst @ cos_src + sin_dst @ sin_src)) / m


def periodic_positions(steps: np.ndarray, lengths=None) -> tuple[np.ndarray, np.ndarray]:
    """Positions at the n knots of one cycle from the n displacements ``steps`` (n, ...) between consecutive
    knots (the last one back to the first), ``lengths`` frames apart (default 1 each): the running sum from
    0 at knot 0, with the cycle's net displacement taken out as a constant speed. Returns (positions
    (n, ...) float64, that speed per frame (...))."""
    steps = np.asarray(steps, dtype=np.float64)
    n = steps.shape[0]
    lengths = np.ones(n) if lengths is None else np.asarray(lengths, dtype=np.float64)
    times = np.concatenate([[0.0], np.cumsum(lengths)])
    positions = np.concatenate([np.zeros((1,) + steps.shape[1:]), np.cumsum(steps, axis=0)])
    drift = positions[-1] / times[-1]
    return positions[:-1] - times[:-1].reshape((-1,) + (1,) * (steps.ndim - 1)) * drift, drift


def cycle_trajectories(flows: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel trajectories of one cycle from its T consecutive-frame flows (T, 2, X, Y) (flow t: frame t to
    t + 1, the last one back to frame 0): float64 (2 P, T), the x then y positions of the P pixels where
    ``mask`` (X, Y) is true (all pixels without one), relative to frame 0 and with the cycle's net drift
    removed as a constant speed (Eulerian: each flow is read at the same pixel)."""
    flows = np.asarray(flows, dtype=np.float64)
    if flows.ndim != 4 or flows.shape[1] != 2:
        raise ValueError(f"flows must be (T, 2, X, Y), got shape {flows.shape}")
    T = flows.shape[0]
    positions, _ = periodic_positions(flows)
    rows = positions.reshape(T, 2, -1)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != flows.shape[2:]:
            raise ValueError(f"mask shape {mask.shape} does not match the flows' {flows.shape[2:]}")
        rows = rows[:, :, mask.ravel()]
    return np.concatenate([rows[:, 0].T, rows[:, 1].T])


@dataclass(frozen=True)
class TimingPrior:
    """Second-moment matrix (M, M) of cycle trajectories sampled at M frames per cycle, frame 0 = trigger.

    ``trajectories``: how many went in; ``cases``: from how many series; ``source``: free text (dataset,
    split) for the record.
    """

    moment: np.ndarray
    trajectories: int
    cases: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        moment = np.asarray(self.moment, dtype=np.float64)
        if moment.ndim != 2 or moment.shape[0] != moment.shape[1] or moment.shape[0] < 3:
            raise TimingPriorError(f"the moment matrix must be square with at least 3 frames, got {moment.shape}")
        if not np.isfinite(moment).all():
            raise TimingPriorError("the moment matrix has NaN or infinite entries")
        object.__setattr__(self, "moment", (moment + moment.T) / 2)

    @property
    def frames(self) -> int:
        return int(self.moment.shape[0])

    @classmethod
    def fit(cls, trajectories: np.ndarray, cases: int = 0, source: str = "") -> TimingPrior:
        """From trajectories (N, M) (:func:`cycle_trajectories` rows); NaN rows are refused."""
        y = np.asarray(trajectories, dtype=np.float64)
        if y.ndim != 2 or y.shape[0] < 1:
            raise TimingPriorError(f"trajectories must be (N, M) with N >= 1, got shape {y.shape}")
        if not np.isfinite(y).all():
            raise TimingPriorError("trajectories contain NaN or infinite values")
        return cls(y.T @ y / y.shape[0], trajectories=y.shape[0], cases=cases, source=source)

    def moment_at(self, T: int) -> np.ndarray:
        """The moment matrix resampled to T frames per cycle (exact when T equals :attr:`frames` and it is odd,
        band-limited otherwise)."""
        if T == self.frames:
            return self.moment
        r = fourier_resampler(self.frames, T)
        return r @ self.moment @ r.T

    def weights(self, T: int, kept: list[int] | np.ndarray, ridge: float = 1e-3) -> np.ndarray:
        """(T, n) matrix A: the positions at all T frames of a cycle predicted from those at the n ``kept``
        frames, ``A @ kept_positions`` (any trailing shape). Rows sum to 1 (a common shift of all positions
        is passed through), rows of kept frames are the identity, and the rest is the ridge least-squares
        predictor under :meth:`moment_at` (``ridge``: relative to the mean variance of the knots)."""
        kept = [int(k) for k in kept]
        n = len(kept)
        if n < 2 or len(set(kept)) != n or min(kept) < 0 or max(kept) >= T:
            raise ValueError(f"kept frames must be at least 2 distinct frames in 0..{T - 1}, got {kept}")
        s = self.moment_at(T)
        # work with positions relative to the first kept frame, so the predictor ignores where the pixel starts
        d = np.eye(T)
        d[:, kept[0]] -= 1.0
        s = d @ s @ d.T
        rest = kept[1:]
        a = s[np.ix_(rest, rest)]
        scale = max(float(np.trace(a)) / len(rest), np.finfo(float).tiny)
        coef = np.linalg.solve(a + ridge * scale * np.eye(len(rest)), s[rest, :]).T  # (T, n - 1)
        out = np.zeros((T, n))
        out[:, 1:] = coef
        out[:, 0] = 1.0 - coef.sum(1)
        out[kept] = np.eye(n)
        return out

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the prior as JSON, atomically (an existing file is refused unless ``overwrite``)."""
        record = {"format": _FORMAT, "frames": self.frames, "trajectories": self.trajectories, "cases": self.cases,
                  "source": self.source, "moment": [[float(v) for v in row] for row in self.moment]}
        return atomic_write_json(path, record, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TimingPrior:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such timing prior (make one with `hdl-monai fit-timing-prior`)")
        try:
            record = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise TimingPriorError(f"{path}: not a timing prior file ({exc})") from exc
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            found = record.get("format") if isinstance(record, dict) else type(record).__name__
            raise TimingPriorError(f"{path}: format {found!r}, expected {_FORMAT!r}")
        try:
            moment = np.asarray(record["moment"], dtype=np.float64)
            return cls(moment, int(record["trajectories"]), int(record.get("cases", 0)), str(record.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise TimingPriorError(f"{path}: {exc}") from exc
