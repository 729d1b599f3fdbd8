"""The C allocator's handling of freed memory, set once at the start of a training job.

glibc serves every block above its mmap threshold (128 KiB, rising with use to 32 MiB at most)
with a fresh `mmap` and hands it back to the kernel with `munmap` when it is freed. A training
step's activations are larger than that (64 triplets at 64 px: 100 MB per convolution output),
so every step unmaps them and the next one faults them in again, page by page, zero-filled by
the kernel: at 64 px a third of the process's CPU time went to the kernel. `keep_freed_memory`
raises the threshold and the trim threshold, so that large blocks come from the heap and stay
there once freed, and the next step reuses them. The cost: the process keeps its peak memory
instead of returning it between steps (bench/RESULTS.md has the figures).
"""

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# blocks below 1 GiB come from the heap; freed memory is trimmed only above 2 GiB - 1 at the top
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1


def keep_freed_memory() -> bool:
    """Large blocks from the heap and kept there once freed (glibc `mallopt`), for this process
    and the processes it forks afterwards. True when glibc took both settings; elsewhere (macOS,
    Windows, musl) nothing changes and it returns False. Calling it again changes nothing more."""
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # raises where the C library is not glibc
        libc = ctypes.CDLL(None)  # the C library this process runs on
        mallopt = libc.mallopt
    except (AttributeError, ValueError, OSError):
        log.debug("not glibc: the C allocator's settings are left as they are")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    done = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and done
    if not done:
        log.warning("glibc refused the allocator settings (mallopt): freed memory is unmapped")
    return done
