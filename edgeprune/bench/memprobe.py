"""Peak resident memory of one model of an artifact, in a fresh process so models do not share
a high-water mark (VmHWM: unlike ru_maxrss it does not carry the parent's peak across exec):
``python -m edgeprune.bench.memprobe ARTIFACT ROLE THREADS SHAPE_JSON`` prints MiB."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeprune.contracts.manifest import Manifest
from edgeprune.runtime.runner import open_runner


def main() -> None:
    artifact, role, threads, shape = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    runner = open_runner(artifact, Manifest.read(artifact), role, threads)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(3):
        runner.run({runner.input_name: x})
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)  # kB -> MiB


if __name__ == "__main__":
    main()
