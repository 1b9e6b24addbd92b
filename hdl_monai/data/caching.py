"""A disk cache for the deterministic head of a training pipeline.

Caching the phase-synthesis training set (loading, ROI crops, five optical-flow windows per frame)
takes about 20 minutes on a 2-core CPU, and every run repeats it: another seed, the baseline on the
same data, a resumed run. :class:`DiskCached` wraps those deterministic transforms; the first run
writes each case's output under ``cache_dir`` and later runs read it back. It is itself deterministic,
so MONAI's ``CacheDataset`` still keeps the result in memory for the epochs.

A cached file is used only while everything that made it is unchanged. Its folder is named by a
fingerprint of the transforms (their classes and settings, the code of any function they hold, the
source of the whole ``hdl_monai`` package and the MONAI, NumPy and PyTorch versions); its file name by
a fingerprint of the data item and of the size and modification time of every file it names (a case
folder counts every file in it). Anything else makes a new file; old ones are never overwritten in
place, and can be deleted at any time. Files are written atomically, and one that cannot be read is
recomputed (with a warning). The files are pickles: point ``cache_dir`` only at folders you trust.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import types
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import Compose, Randomizable, Transform

from hdl_monai.data.atomic import atomic_write

__all__ = ["DiskCached", "disk_cached", "pipeline_fingerprint", "item_fingerprint"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
logger = logging.getLogger(__name__)


def _describe(obj: Any, seen: set[int]) -> str:
    """A text that changes when ``obj``'s value changes and is the same in every process."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return repr(obj)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        array = obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else obj
        return f"{type(obj).__name__}({array.dtype},{array.shape},{hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()})"
    if isinstance(obj, (np.generic, torch.dtype, torch.device, Path)):
        return f"{type(obj).__name__}({obj!r})"
    if id(obj) in seen:
        return "<cycle>"
    seen = seen | {id(obj)}
    if isinstance(obj, (list, tuple, set, frozenset)):
        parts = [_describe(v, seen) for v in obj]
        return f"{type(obj).__name__}[{','.join(sorted(parts) if isinstance(obj, (set, frozenset)) else parts)}]"
    if isinstance(obj, Mapping):
        parts = sorted(f"{_describe(k, seen)}:{_describe(v, seen)}" for k, v in obj.items())
        return f"{type(obj).__name__}{{{','.join(parts)}}}"
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, types.MethodType):
        return f"method({_describe(obj.__func__, seen)},{_describe(obj.__self__, seen)})"
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        closure = tuple(cell.cell_contents for cell in obj.__closure__ or ())
        return (f"function {obj.__module__}.{obj.__qualname__}({code.co_code.hex()},"
                f"{_describe(code.co_consts, seen)},{code.co_names},{_describe(obj.__defaults__, seen)},"
                f"{_describe(closure, seen)})")
    if isinstance(obj, types.CodeType):
        return f"code({obj.co_code.hex()},{_describe(obj.co_consts, seen)},{obj.co_names})"
    if isinstance(obj, (types.BuiltinFunctionType, types.ModuleType)):
        return f"{type(obj).__name__} {getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj.__name__)}"
    state = getattr(obj, "__dict__", None)
    if state is not None:  # thread-locals are run-time state (MONAI's tracing flag appears on a first call)
        state = {k: v for k, v in state.items() if not isinstance(v, threading.local)}
        return f"{type(obj).__module__}.{type(obj).__qualname__}{_describe(state, seen)}"
    return f"{type(obj).__module__}.{type(obj).__qualname__}({_ADDRESS.sub('', repr(obj))})"


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """The package's source and the libraries' versions: any change to the code that made a cached
    file retires it."""
    import monai

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update(f"monai {monai.__version__} numpy {np.__version__} torch {torch.__version__}".encode())
    return digest.hexdigest()


def pipeline_fingerprint(transforms: Sequence[Callable]) -> str:
    """A 16-hex-digit fingerprint of ``transforms`` (their settings) and of the code that runs them."""
    text = _describe(list(transforms), set()) + _code_fingerprint()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _file_stats(value: Any) -> list[str]:
    """Size and modification time of the file a string names, or of every file in the folder it names."""
    if not isinstance(value, (str, os.PathLike)) or not str(value) or not os.path.exists(value):
        return []
    path = Path(value)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = []
    for file in files:
        stat = file.stat()
        stats.append(f"{file}:{stat.st_size}:{stat.st_mtime_ns}")
    return stats


def item_fingerprint(item: Mapping[Hashable, Any]) -> str:
    """A 16-hex-digit fingerprint of a data item and of the files it names as they are now."""
    stats = [s for value in item.values() for s in _file_stats(value)]
    text = _describe(dict(item), set()) + "|" + "|".join(stats)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DiskCached(Transform):
    """Apply ``transforms`` to a data item, reading the result from ``cache_dir`` when an earlier run
    made it from the same item, files and pipeline (see the module docstring), and writing it there
    when not.

    Args:
        transforms: deterministic transforms (a random one is a ValueError: caching it would freeze
            one draw for every epoch and run).
        cache_dir: the cache's root folder; made when needed. Each pipeline gets a sub-folder named
            by its fingerprint.
        name_key: the item key whose base name starts each file name (e.g. the case folder), so a
            person can see which case a file holds.
    """

    def __init__(self, transforms: Sequence[Callable], cache_dir: str | os.PathLike, name_key: str = "case") -> None:
        self.transforms = list(transforms)
        for transform in self.transforms:
            if isinstance(transform, Randomizable):
                raise ValueError(
                    f"DiskCached: {type(transform).__name__} is random; only the deterministic head of a "
                    "pipeline can be cached on disk")
        self.compose = Compose(self.transforms)
        self.cache_dir = Path(cache_dir)
        self.name_key = name_key
        self.fingerprint = pipeline_fingerprint(self.transforms)

    def path_for(self, data: Mapping[Hashable, Any]) -> Path:
        """Where the output for ``data`` is (or will be) cached."""
        name = data.get(self.name_key)
        prefix = f"{Path(str(name)).name}-" if name else ""
        return self.cache_dir / self.fingerprint / f"{prefix}{item_fingerprint(data)}.pt"

    def __call__(self, data: Mapping[Hashable, Any]) -> Any:
        path = self.path_for(data)
        if path.is_file():
            try:
                result = torch.load(path, weights_only=False)
                logger.info("read cached %s", path)
                return result
            except Exception as error:  # a truncated or foreign file: say so and make it again
                warnings.warn(f"{path}: unreadable cache file ({error}); recomputing it", stacklevel=2)
        start = time.perf_counter()
        result = self.compose(data)
        atomic_write(path, lambda tmp: torch.save(result, tmp))
        logger.info("cached %s (%.1f s)", path, time.perf_counter() - start)
        return result


def disk_cached(transforms: Sequence[Callable], cache_dir: str | os.PathLike | None) -> list[Callable]:
    """``transforms`` unchanged when ``cache_dir`` is empty, else one :class:`DiskCached` wrapping them:
    the bundle configs call this so that ``cache_dir`` is a plain on/off key."""
    if not cache_dir:
        return list(transforms)
    return [DiskCached(transforms, cache_dir)]
