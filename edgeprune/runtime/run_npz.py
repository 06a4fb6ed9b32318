"""Run an artifact's sparse model on the inputs in an ``.npz`` and save the outputs to another:
``python run_npz.py MODEL LIBRARY INPUTS OUTPUTS``. It needs only numpy and onnxruntime, and
imports nothing from edgeprune, so it runs as it is inside an emulated board's Python."""

import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, library, inputs, outputs = sys.argv[1:5]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.register_custom_ops_library(library)
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    data = np.load(inputs)
    name = sess.get_inputs()[0].name
    results = {}
    for key in sorted(data.files):
        for out, value in zip(sess.get_outputs(), sess.run(None, {name: data[key]}), strict=True):
            results[f"{key}/{out.name}"] = value
    np.savez(outputs, **results)


if __name__ == "__main__":
    main()
