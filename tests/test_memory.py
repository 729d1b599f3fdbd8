"""The allocator setting: freed large blocks stay with the process, set at the start of a job."""

import os
import subprocess
import sys

import pytest

from siamese.run.build import build

# a fresh process allocates and frees 64 MiB through the C allocator and prints how much of it
# its resident memory kept; `keep` calls keep_freed_memory() first
PROBE = """
import ctypes, sys
from siamese.core.memory import keep_freed_memory
done = keep_freed_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
size = 64 << 20
block = libc.malloc(size)
ctypes.memset(block, 1, size)
before = rss()
libc.free(block)
print(done, (rss() - before + size) / size)
"""


def probe(mode: str) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return out[0], float(out[1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "confstr"), reason="glibc only"
)
def test_freed_blocks_stay_with_the_process_only_when_asked():
    done, kept = probe("keep")
    assert done == "True" and kept > 0.9  # freed, still resident: the next step reuses it
    done, kept = probe("plain")
    assert done == "None" and kept < 0.1  # glibc's own thresholds: unmapped at the free


@pytest.mark.parametrize("keep", [True, False])
def test_the_config_switch_sets_it_at_the_start_of_a_job(make_config, monkeypatch, keep):
    import siamese.models.speed as speed

    calls = []
    monkeypatch.setattr(speed, "keep_memory", lambda: calls.append(1))
    build(make_config(f"speed.keep_freed_memory={str(keep).lower()}"))
    assert calls == ([1] if keep else [])
