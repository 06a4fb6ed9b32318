"""Run an artifact's sparse model on the inputs in an ``.npz`` and save the outputs to another:
``python run_npz.py MODEL LIBRARY INPUTS OUTPUTS``. It needs only numpy and onnxruntime, and
imports nothing from edgeprune, so it runs as it is inside an emulated board's Python.

MODEL and LIBRARY must be paths its caller has checked against the artifact's manifest
(``edgeprune.runtime.artifact_files.checked_path``). A failure is one line on stderr that says
which step failed (exit code 1), not a traceback."""

import re
import sys

import numpy as np
import onnxruntime as ort


def _first_line(exc: BaseException) -> str:
    """The error's first line, without onnxruntime's ``[ONNXRuntimeError] : 7 :`` prefix."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", first)


def main() -> int:
    model, library, inputs, outputs = sys.argv[1:5]
    failed = f"{library}: onnxruntime cannot register it"
    try:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        so.register_custom_ops_library(library)
        failed = f"{model} is not a valid ONNX model"
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        failed = f"{inputs} cannot be read"
        data = np.load(inputs)
        name = sess.get_inputs()[0].name
        results = {}
        for key in sorted(data.files):
            failed = f"{model} failed to run on sample {key}"
            for out, value in zip(sess.get_outputs(), sess.run(None, {name: data[key]}), strict=True):
                results[f"{key}/{out.name}"] = value
        failed = f"{outputs} cannot be written"
        np.savez(outputs, **results)
    except Exception as exc:  # noqa: BLE001 - one line for the caller, whatever failed
        print(f"{failed}: {_first_line(exc)} ({type(exc).__name__})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
