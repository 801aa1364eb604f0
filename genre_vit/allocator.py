"""glibc malloc settings for a process that runs GenreViT on the CPU, applied by the command line and the app at
start-up (a process-wide choice, so the library never makes it on import or in a constructor).

Why: torch's CPU allocator takes every tensor from malloc and gives it back when the tensor dies. A forward pass of
32 windows makes tensors of 4 to 31 MB (the feed-forward layer's `(32 x 118, 2048)` activations), which glibc
serves with fresh `mmap`s above its dynamic threshold and trims back to the system when they are freed: every
layer then pays the page faults of touching new memory. Keeping blocks up to `mmap_threshold_mb` in the heap, and
up to `trim_threshold_mb` of freed heap before trimming, lets each pass reuse the last one's memory. Measured on the
2-core development CPU (bfloat16 fast path, 89 windows of a 3-minute song): the model took 0.60 s instead of
0.75-0.83 s on 2 threads, 1.18 s instead of 1.39 s on one.

The price is memory held after a peak. glibc gives freed heap back only from the heap's top, beyond
`trim_threshold_mb`; a freed block below a live one stays held until reused, and 64-byte-aligned blocks (torch's)
do not fit exactly into the hole of a freed block of the same size: 48-MB tensors made and freed in a loop held 98
to 295 MB of free heap, levelling off by the sixth and not growing after it (20-MB tensors: 41 to 123 MB; 5 runs
each). The 1-hour file's peak was unchanged (1.09 GB), while the demo server under load peaked 50-80 MB higher and
levelled off at 1.18 GB instead of 1.08 GB on songs of 30 to 79 s (README, Performance). `arenas` caps glibc's
per-thread arenas, for a server whose worker threads would otherwise each keep their own freed memory.
"""

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_malloc(mmap_threshold_mb: int = 64, trim_threshold_mb: int = 256, arenas: int | None = None) -> bool:
    """Apply the settings of the module docstring with glibc's `mallopt`. Returns whether every setting was taken
    (False without glibc, e.g. on macOS or musl: nothing changes there)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    megabyte = 1 << 20
    settings = [(_M_MMAP_THRESHOLD, mmap_threshold_mb * megabyte), (_M_TRIM_THRESHOLD, trim_threshold_mb * megabyte)]
    if arenas is not None:
        settings.append((_M_ARENA_MAX, arenas))
    taken = all(mallopt(option, value) == 1 for option, value in settings)
    if not taken:
        logger.debug("glibc refused a malloc setting: %s", settings)
    return taken


__all__ = ["tune_malloc"]
