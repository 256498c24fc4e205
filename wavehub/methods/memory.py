"""Fresh CPU tensors on transparent huge pages.

Writing a new model's weights into freshly allocated memory is dominated by page faults (one per 4 KiB page),
not by the writes; 2 MiB pages cut the faults 512-fold (timings in benchmarks/README.md). Linux gives huge pages to anonymous mappings that ask for them
(``MADV_HUGEPAGE``; the kernel default ``transparent_hugepage=madvise`` gives them to no one else), so big
composed weights get their own mapping that asks. Each tensor owns its mapping (freed with the tensor), so
``state_dict``, safetensors, ``torch.save``, ``share_memory_()`` and ``.to()`` behave as for any tensor.
Anywhere this cannot apply (not Linux, not a CPU, under 2 MiB, THP disabled) it is ``torch.empty``.
"""

from __future__ import annotations

import math
import mmap

import torch

__all__ = ["empty"]

_HUGE = 2 << 20
_OK = hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_ANONYMOUS")


def empty(
    shape: tuple[int, ...] | list[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Like ``torch.empty(shape, dtype=, device=)``; CPU tensors of 2 MiB or more start on a huge-page boundary
    of a mapping advised ``MADV_HUGEPAGE``."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    numel = math.prod(shape)
    nbytes = numel * dtype.itemsize
    if not _OK or dev.type != "cpu" or nbytes < _HUGE:
        return torch.empty(shape, dtype=dtype, device=dev)
    try:
        # room to start on a 2 MiB boundary; the unused head stays virtual (never touched)
        m = mmap.mmap(-1, nbytes + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        probe = torch.frombuffer(m, dtype=torch.uint8, count=1)
        offset = (-probe.data_ptr()) % _HUGE
        del probe
        # huge pages for the whole 2 MiB chunks only: a huge tail page would hold up to 2 MiB of nothing
        m.madvise(mmap.MADV_HUGEPAGE, offset, nbytes - nbytes % _HUGE)
        return torch.frombuffer(m, dtype=dtype, offset=offset, count=numel).view(shape)
    except (OSError, ValueError, RuntimeError):  # no address space, madvise refused: the ordinary allocator
        return torch.empty(shape, dtype=dtype, device=dev)
