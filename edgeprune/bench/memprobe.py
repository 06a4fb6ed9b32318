"""Peak resident memory of one ONNX session, in a fresh process so sessions do not share a
high-water mark (VmHWM: unlike ru_maxrss it does not carry the parent's peak across exec):
``python -m edgeprune.bench.memprobe MODEL THREADS [LIBRARY|'' [SHAPE_JSON]]`` prints MiB."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeprune.runtime.library import session


def main() -> None:
    model, threads = Path(sys.argv[1]), int(sys.argv[2])
    library = Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    shape = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
    sess = session(model, threads, library)
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(shape or [1, *inp.shape[1:]]).astype(np.float32)
    for _ in range(3):
        sess.run(None, {inp.name: x})
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)  # kB -> MiB


if __name__ == "__main__":
    main()
