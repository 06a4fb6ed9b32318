"""Does sampling the power sensor slow the model? Latency with the sampling thread on against
off, in the same run: blocks of back-to-back inferences alternate between the two, and the
p50 of each side is compared. The sensor is a fake INA3221 (a recorded sysfs tree under
``EDGEPRUNE_SYSFS_ROOT``) read at the backend's own rate (100 Hz), so the thread does all the work a
real one does (wake, read two files, store), with no board needed.

    python benchmarks/energy_overhead.py [--threads 1 2] [--rounds 20]

Goal: within 2% (ratio on/off at most 1.02). Writes benchmarks/results/energy_overhead.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeprune.bench.energy.detect import open_sensor
from edgeprune.bench.energy.sampler import Sampler
from edgeprune.costmodel.layer_models import dense_conv_model, random_weight

LAYER = ("3x3 256->256 @28", 256, 256, 3, 28)


def fake_ina3221(root: Path) -> None:
    d = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    d.mkdir(parents=True)
    for name, value in (("in1_label", "VDD_IN"), ("in1_input", "5000"), ("curr1_input", "900")):
        (d / name).write_text(value + "\n")


def block(run, seconds: float) -> list[float]:
    out, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        run()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def measure(threads: int, rounds: int, block_s: float) -> dict:
    _, cin, cout, k, hw = LAYER
    rng = np.random.default_rng(0)
    w = random_weight(rng, cout, cin, k, 1.0, (1, 1))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(dense_conv_model(w, np.zeros(cout, np.float32), hw), opts,
                                providers=["CPUExecutionProvider"])  # fmt: skip
    feed = {"x": rng.standard_normal((1, cin, hw, hw)).astype(np.float32)}

    def run():
        return sess.run(None, feed)

    block(run, 1.0)  # warm-up
    sides: dict[str, list[float]] = {"off": [], "on": []}
    rates = []
    for _ in range(rounds):
        sides["off"] += block(run, block_s)
        with Sampler(open_sensor("ina3221-hwmon", "ina3221", "hwmon", "VDD_IN")) as s:
            t0 = time.perf_counter()
            sides["on"] += block(run, block_s)
            rates.append(s.rate_hz(t0, time.perf_counter()))
    p50 = {k: float(np.percentile(v, 50)) for k, v in sides.items()}
    return {"threads": threads, "layer": LAYER[0], "p50_off_ms": p50["off"], "p50_on_ms": p50["on"],
            "ratio_on_off": p50["on"] / p50["off"], "runs": {k: len(v) for k, v in sides.items()},
            "sampling_hz": float(np.median(rates))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--block", type=float, default=0.5, help="seconds per block")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "energy_overhead"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        fake_ina3221(Path(root))
        os.environ["EDGEPRUNE_SYSFS_ROOT"] = root
        rows = [measure(t, args.rounds, args.block) for t in args.threads]
    lines = ["| threads | layer | p50 off ms | p50 on ms | on/off | sampling Hz | runs off/on |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = f"{r['runs']['off']}/{r['runs']['on']}"
        lines.append(f"| {r['threads']} | {r['layer']} | {r['p50_off_ms']:.3f} | {r['p50_on_ms']:.3f} | "
                     f"{r['ratio_on_off']:.4f} | {r['sampling_hz']:.0f} | {runs} |")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    Path(args.out + ".md").write_text("# Sampling overhead (fake INA3221 read at the backend's rate)\n\n" + text + "\n")
    Path(args.out + ".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
