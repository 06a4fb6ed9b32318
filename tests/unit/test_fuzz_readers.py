"""Fuzzing every reader of a file that travels between stages or that a user writes (issue 15,
"one line for every bad file"): checkpoints, manifests, results, target files, calibration
tables and SMSP mask library entries.

Each test starts from a valid file and mutates it, at the byte level (flip, overwrite, insert,
delete, repeat, truncate) and at the structure level (parse it, then replace a node with a value
of another type or one taken from elsewhere in the document, delete or add keys, wrap a node,
NaN/Inf/huge numbers, deep nesting, text that is not UTF-8); a checkpoint's tensors are mutated
too (dtypes, shapes, names, NaN weights, masks other than 0/1). The mutated file is written and
read, and what was read is used the way the commands use it. The reader must return normally or
raise a UserError whose message is one printable line naming the file; any other exception, or
a case slower than a second (hypothesis' deadline), fails the test.

Hypothesis runs derandomized, so every run tries the same cases; ``CASES`` says how many each
test runs, and each test prints its tally (``pytest -s`` or ``-rP`` shows it), e.g.
``fuzz checkpoint bytes: 150 cases, 141 refused, 9 read, slowest 45 ms``.
"""

import copy
import dataclasses
import json
import math
import re
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import tomllib
import torch
from helpers import manifest_doc, results_doc
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.checkpoint import load_checkpoint, masked_model
from edgeprune.contracts.manifest import MANIFEST, Manifest
from edgeprune.contracts.results import Results
from edgeprune.costmodel.table import CostTable
from edgeprune.errors import UserError
from edgeprune.graph.carried import at_size, run_graph
from edgeprune.prune.smsp_library import LibraryEntry, load_library, save_entry
from edgeprune.targets import SHIPPED, parse_target
from edgeprune.workload.registry import resolve_workload

DIGITS_80 = {"workload": "digits", "method": "magnitude", "sparsity": 0.8, "tasks": ["digit", "ge5"]}

# test -> hypothesis examples per run (about 8 s for all of them together on 2 idle cores)
CASES = {
    "checkpoint bytes": 150, "checkpoint structure": 150, "checkpoint tensors": 120, "checkpoint graph": 150,
    "manifest bytes": 250, "manifest structure": 300,
    "results bytes": 200, "results structure": 250,
    "target bytes": 200, "target structure": 300,
    "calibration bytes": 150, "calibration structure": 250,
    "library bytes": 200, "library structure": 250,
}  # fmt: skip


def fuzz_settings(name: str) -> settings:
    # derandomize: the same cases on every run (CI is reproducible; nothing is stored between
    # runs); deadline: no case (mutate, write, read, use) may take over a second.
    return settings(max_examples=CASES[name], deadline=1000, derandomize=True, database=None)


@dataclasses.dataclass
class Tally:
    """Runs one case and checks its outcome; counts cases, refusals and the slowest."""

    name: str
    where: str  # every error message must name this (the file, or the artifact directory)
    cases: int = 0
    refused: int = 0
    slowest: float = 0.0

    def check(self, read: Callable[[], object]) -> None:
        start = time.perf_counter()
        try:
            read()
        except UserError as exc:
            self.refused += 1
            message = str(exc)
            assert message.isprintable(), f"not one printable line: {message!r}"
            assert self.where in message, f"does not name {self.where}: {message!r}"
        finally:
            self.cases += 1
            self.slowest = max(self.slowest, time.perf_counter() - start)

    def report(self) -> None:
        print(f"fuzz {self.name}: {self.cases} cases, {self.refused} refused, {self.cases - self.refused} read, "
              f"slowest {1000 * self.slowest:.0f} ms")  # fmt: skip
        assert self.cases >= CASES[self.name]


# ---------------------------------------------------------------------------------------------
# Mutations

# Values that JSON (or TOML) cannot carry as such, written into the text after serialising.
DEEP_LIST, DEEP_DICT, BIG_INT, NOT_UTF8 = "\x00deep-list\x00", "\x00deep-dict\x00", "\x00big-int\x00", "\x00raw\x00"
RAW = {
    DEEP_LIST: b"[" * 50_000 + b"]" * 50_000,
    DEEP_DICT: b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    BIG_INT: b"9" * 5_000,
    NOT_UTF8: b'"\xff\xfe\xc3\x28"',
}
RAW_TOML = {**RAW, DEEP_DICT: b"{a=" * 5_000 + b"1" + b"}" * 5_000}

ODD_TEXT = ["", "..", "../../x", "/etc/passwd", "a\nb", "\x1b[31mred", "\udcff", "x" * 5000, "\x00", "élan",
            "element", "channel", "block:4x1", "block:0x1", "2:4", "nm:1:2", "digit", "ge5", "digits", "host",
            "aarch64", "native", "csr", "kxk", "1x1", "edgeprune.checkpoint/1",
            "edgeprune.checkpoint/2", "edgeprune.artifact/1"]  # fmt: skip
ODD_NUMBERS = [0, -1, 1, 2, 7, 2**31, 2**63, 2**64, -(2**63), 10**30, math.nan, math.inf, -math.inf, 1e308, -0.0,
               5e-324, 0.5, 1.5, -0.5]  # fmt: skip
# A value of any JSON type, biased towards the ones that break readers (each line about as likely).
ODD_VALUES = st.one_of(
    st.sampled_from([DEEP_LIST, DEEP_DICT, BIG_INT, NOT_UTF8]),
    st.sampled_from([None, True, False, *ODD_NUMBERS]),
    st.sampled_from(ODD_TEXT),
    st.integers() | st.floats() | st.text(max_size=8),
    st.lists(st.integers(-2, 300), max_size=4) | st.lists(st.sampled_from(ODD_TEXT), max_size=3),
    st.dictionaries(st.sampled_from(ODD_TEXT) | st.text(max_size=4), st.integers(-2, 2) | st.text(max_size=3),
                    max_size=3),
)  # fmt: skip


def nodes(doc: object, path: tuple = ()) -> list[tuple]:
    """Paths to every node of a JSON-like document, the root included."""
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += nodes(v, (*path, i))
    return out


def get_at(doc: object, path: tuple) -> object:
    for k in path:
        doc = doc[k]  # type: ignore[index]
    return doc


def set_at(doc: object, path: tuple, value: object) -> object:
    if not path:
        return value
    get_at(doc, path[:-1])[path[-1]] = value  # type: ignore[index]
    return doc


def mutate_structure(data: st.DataObject, doc: object) -> object:
    """One to three changes to a parsed document (a deep copy of it)."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        paths = nodes(doc)
        path = data.draw(st.sampled_from(paths), label="node")
        node = get_at(doc, path)
        op = data.draw(st.sampled_from(["replace", "replace", "borrow", "delete", "add", "wrap", "text"]), label="op")
        if op == "replace":
            doc = set_at(doc, path, data.draw(ODD_VALUES, label="value"))
        elif op == "borrow":  # a value from elsewhere in the document: realistic, of another type
            doc = set_at(doc, path, copy.deepcopy(get_at(doc, data.draw(st.sampled_from(paths), label="from"))))
        elif op == "delete" and path:
            parent = get_at(doc, path[:-1])
            del parent[path[-1]]  # type: ignore[attr-defined]
        elif op == "add" and isinstance(node, dict):
            key = data.draw(st.sampled_from(ODD_TEXT) | st.text(max_size=6), label="key")
            node[key] = data.draw(ODD_VALUES, label="value")
        elif op == "add" and isinstance(node, list):
            node.append(data.draw(ODD_VALUES, label="value"))
        elif op == "wrap":
            doc = set_at(doc, path, data.draw(st.sampled_from([[node], {"x": node}]), label="wrapped"))
        elif op == "text":
            doc = set_at(doc, path, node if isinstance(node, str) else json.dumps(node, allow_nan=True))
    return doc


def json_bytes(doc: object) -> bytes:
    """JSON with the raw stand-ins (deep nesting, huge integers, invalid UTF-8) written in."""
    text = json.dumps(doc, allow_nan=True).encode()
    for marker, raw in RAW.items():
        text = text.replace(json.dumps(marker).encode(), raw)
    return text


def toml_value(value: object) -> str:
    if isinstance(value, str) and value in RAW_TOML:
        return value  # type: ignore[return-value]  # replaced in toml_bytes
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (a lone surrogate is invalid TOML, as it should be)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return "1979-05-27T07:32:00Z"  # None: TOML has no null, so a type it has and no reader expects


def toml_bytes(doc: object) -> bytes:
    """TOML of a document (every table inline), with the raw stand-ins written in."""
    if not isinstance(doc, dict):
        text = f"x = {toml_value(doc)}\n"
    else:
        text = "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())
    raw = text.encode("utf-8", "surrogatepass")
    for marker, stand_in in RAW_TOML.items():
        raw = raw.replace(marker.encode(), stand_in)
    return raw


INTERESTING_BYTES = [0x00, 0xFF, 0x80, 0x7F, ord('"'), ord("{"), ord("}"), ord("["), ord("]"), ord(","),
                     ord(":"), ord("-"), ord("9"), ord("e"), ord("\n"), ord("="), ord("\\")]  # fmt: skip


def mutate_bytes(data: st.DataObject, raw: bytes, hot: int = 0) -> bytes:
    """One to four byte-level changes; half of them within the first ``hot`` bytes when given
    (a checkpoint's header, where a change matters more than in the weights)."""
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        end = hot if hot and data.draw(st.booleans(), label="in header") else len(buf)
        end = max(1, min(end, len(buf)))
        pos = data.draw(st.integers(0, end - 1), label="position")
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "repeat", "truncate"]), label="op")
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif op == "set" and buf:
            buf[pos] = data.draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255), label="byte")
        elif op == "insert":
            extra = data.draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"9" * 40, b"e999", b"\xc3"]))
            buf[pos:pos] = extra
        elif op == "delete":
            del buf[pos : pos + data.draw(st.integers(1, 16), label="length")]
        elif op == "repeat":
            buf[pos:pos] = buf[pos : pos + data.draw(st.integers(1, 32), label="length")]
        elif op == "truncate":
            del buf[pos:]
    return bytes(buf)


# ---------------------------------------------------------------------------------------------
# Checkpoints


@pytest.fixture(scope="module")
def checkpoint_seed(checkpoints) -> bytes:
    return checkpoints(**DIGITS_80).read_bytes()


@pytest.fixture(scope="module")
def digits():
    return resolve_workload("digits")


def use_checkpoint(path: Path, workload) -> None:
    """What inspect and evaluate (the workload is given, as ``--workload`` gives it: nothing the
    file names is imported), and compile and verify (the carried graph, on the carried inputs)
    do with a checkpoint."""
    ckpt = load_checkpoint(path)
    model = masked_model(ckpt, workload)  # rebuild_model, then the masks applied
    ckpt.masks.sparsity()
    model(torch.zeros(1, 1, 28, 28))
    meta = ckpt.meta
    graph, info = ckpt.carried_graph()
    run_graph(at_size(graph, info, None, meta.model), ckpt.inputs[:1].numpy())


def split_safetensors(raw: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def join_safetensors(header: bytes, data: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def run_checkpoint_fuzz(name, tmp_path, digits, mutate: Callable[[st.DataObject], bytes]) -> None:
    path = tmp_path / "fuzzed.ept"
    tally = Tally(name, str(path))

    @fuzz_settings(name)
    @given(st.data())
    def case(data):
        path.write_bytes(mutate(data))
        tally.check(lambda: use_checkpoint(path, digits))

    case()
    tally.report()


def test_seed_checkpoint_reads(checkpoint_seed, tmp_path, digits):
    path = tmp_path / "seed.ept"
    path.write_bytes(checkpoint_seed)
    use_checkpoint(path, digits)
    header, data = split_safetensors(checkpoint_seed)
    path.write_bytes(join_safetensors(json.dumps(header).encode(), data))  # the header round-trips
    use_checkpoint(path, digits)


def test_fuzz_checkpoint_bytes(checkpoint_seed, tmp_path, digits):
    (length,) = struct.unpack("<Q", checkpoint_seed[:8])
    run_checkpoint_fuzz("checkpoint bytes", tmp_path, digits,
                        lambda data: mutate_bytes(data, checkpoint_seed, hot=8 + length))  # fmt: skip


def test_fuzz_checkpoint_structure(checkpoint_seed, tmp_path, digits):
    """The safetensors header (dtypes, shapes, byte ranges) and the edgeprune metadata in it."""
    header, body = split_safetensors(checkpoint_seed)
    meta = json.loads(header["__metadata__"]["edgeprune"])

    def mutate(data):
        new = copy.deepcopy(header)
        if data.draw(st.booleans(), label="metadata"):
            new["__metadata__"]["edgeprune"] = json_bytes(mutate_structure(data, meta)).decode("utf-8", "replace")
            if data.draw(st.integers(0, 9), label="raw") == 0:  # metadata that is not a JSON string
                new["__metadata__"]["edgeprune"] = data.draw(ODD_VALUES, label="metadata value")
        else:
            new = mutate_structure(data, new)
        return join_safetensors(json_bytes(new), body)

    run_checkpoint_fuzz("checkpoint structure", tmp_path, digits, mutate)


def test_fuzz_checkpoint_graph(checkpoint_seed, tmp_path, digits):
    """The ONNX graph a checkpoint carries, its bytes mutated and its recorded sha256 made to
    match (as someone crafting a checkpoint would): the protobuf parser, the ONNX checker and
    the graph checks of edgeprune.graph.carried, then ONNX Runtime on the carried inputs."""
    import hashlib

    seed = safetensors.torch.load(checkpoint_seed)
    header, _ = split_safetensors(checkpoint_seed)
    meta = json.loads(header["__metadata__"]["edgeprune"])
    raw = seed["g/onnx"].numpy().tobytes()

    def mutate(data):
        graph = mutate_bytes(data, raw, hot=256)
        tensors = {**seed, "g/onnx": torch.frombuffer(bytearray(graph), dtype=torch.uint8) if graph else
                   torch.zeros(0, dtype=torch.uint8)}  # fmt: skip
        new_meta = {**meta, "graph": {**meta["graph"], "sha256": hashlib.sha256(graph).hexdigest()}}
        return safetensors.torch.save(tensors, metadata={"edgeprune": json.dumps(new_meta)})

    run_checkpoint_fuzz("checkpoint graph", tmp_path, digits, mutate)


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64, torch.int32, torch.int8,
          torch.uint8, torch.bool, torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn,
          torch.complex64]  # fmt: skip
GRANULARITIES = ["element", "channel", "block:4x1", "block:1x4", "block:9999x1", "block:1x99999", "2:4", "nm:1:2",
                 "1:99999", "block:0x1", "sparse", ""]  # fmt: skip


@pytest.mark.filterwarnings("ignore:Casting complex values to real")
def test_fuzz_checkpoint_tensors(checkpoint_seed, tmp_path, digits):
    """Well-formed safetensors files whose tensors are wrong for a checkpoint: other dtypes and
    shapes, missing, renamed or extra tensors, NaN and Inf weights, masks other than 0 and 1,
    granularities that do not fit."""
    seed = safetensors.torch.load(checkpoint_seed)
    header, _ = split_safetensors(checkpoint_seed)
    meta = json.loads(header["__metadata__"]["edgeprune"])

    def mutate(data):
        tensors = {k: v.clone() for k, v in seed.items()}
        new_meta = copy.deepcopy(meta)
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            key = data.draw(st.sampled_from(sorted(tensors)), label="tensor") if tensors else "w/x"
            op = data.draw(st.sampled_from(["nan", "mask value", "dtype", "reshape", "drop", "rename", "add",
                                            "empty", "mask from weight", "granularity"]), label="op")  # fmt: skip
            t = tensors.get(key, torch.zeros(1))
            if op == "nan" and t.is_floating_point() and t.numel():
                t.view(-1)[data.draw(st.integers(0, t.numel() - 1))] = data.draw(
                    st.sampled_from([math.nan, math.inf, -math.inf]))
            elif op == "mask value" and key.startswith("m/") and t.numel():
                t.view(-1)[data.draw(st.integers(0, t.numel() - 1))] = data.draw(st.sampled_from([2, 3, 255]))
            elif op == "dtype":
                tensors[key] = t.to(data.draw(st.sampled_from(DTYPES), label="dtype"))
            elif op == "reshape":
                shapes = [(-1,), (1, *t.shape), tuple(reversed(t.shape)), (*t.shape, 1)]
                tensors[key] = t.reshape(data.draw(st.sampled_from(shapes), label="shape")).contiguous()
            elif op == "drop":
                tensors.pop(key, None)
            elif op == "rename":
                other = data.draw(st.sampled_from([key[2:], "w/" + key[2:], "m/" + key[2:], key + ".x", "w/", "m/",
                                                   "x/" + key[2:], key.upper()]), label="name")  # fmt: skip
                tensors[other] = tensors.pop(key, t)
            elif op == "add":
                name = data.draw(st.sampled_from(["w/extra", "m/extra", "m/heads.digit.0.bias", "w/" + key[2:]]))
                shape = data.draw(st.lists(st.integers(0, 4), max_size=3), label="shape")
                tensors[name] = torch.ones(shape, dtype=data.draw(st.sampled_from(DTYPES), label="dtype"))
            elif op == "empty":
                tensors[key] = torch.zeros((0, *t.shape[1:]), dtype=t.dtype)
            elif op == "mask from weight" and key.startswith("m/") and "w/" + key[2:] in tensors:
                tensors[key] = tensors["w/" + key[2:]].clone()
            elif op == "granularity":
                name = key[2:] if data.draw(st.booleans()) else data.draw(st.sampled_from(ODD_TEXT))
                new_meta.setdefault("granularity", {})[name] = data.draw(st.sampled_from(GRANULARITIES))
        return safetensors.torch.save(tensors, metadata={"edgeprune": json.dumps(new_meta)})

    run_checkpoint_fuzz("checkpoint tensors", tmp_path, digits, mutate)


SPARSE_PROBE = textwrap.dedent("""
    import json, os, resource, struct, sys, time
    from edgeprune.checkpoint import load_checkpoint
    from edgeprune.errors import UserError

    meta = {"format": "edgeprune.checkpoint/2", "edgeprune_version": "0", "workload": "digits",
            "model": "digits-cnn", "tasks": ["digit"], "method": "magnitude", "settings": {}, "source_hash": "0"}

    def probe(path, claim, size, beside):
        tensors = {"m/big": {"dtype": "U8", "shape": [claim], "data_offsets": [0, claim]}}
        if beside == "weight":  # a weight of the mask's shape beside it: a consistent header
            tensors["w/big"] = {"dtype": "U8", "shape": [claim], "data_offsets": [claim, 2 * claim]}
        else:
            tensors["w/a"] = {"dtype": "F32", "shape": [1], "data_offsets": [claim, claim + 4]}
        data = max(t["data_offsets"][1] for t in tensors.values())
        header = json.dumps({"__metadata__": {"edgeprune": json.dumps(meta)}, **tensors}).encode()
        with open(path, "wb") as fh:
            fh.write(struct.pack("<Q", len(header)) + header)
        try:
            os.truncate(path, 8 + len(header) + (data if size == "full" else 16))  # sparse: no block written
        except OSError:
            return {"skipped": "this file system cannot hold a sparse file of that size"}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            load_checkpoint(path)
            message = None
        except UserError as exc:
            message = str(exc)
        seconds = time.perf_counter() - start
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # kB -> MB
        os.unlink(path)
        return {"message": message, "seconds": seconds, "rss_growth_mb": grown}

    print(json.dumps([probe(*case) for case in json.loads(sys.argv[1])]))
""")

SPARSE_CASES = [  # (file name, bytes the mask claims, file size, what lies beside the mask, expected message)
    ("unmatched.ept", 2**31, "full", "small weight", "mask big has no weight of its shape"),  # the finding
    ("short.ept", 2**31, "short", "small weight", "but the file holds 16"),
    ("huge.ept", 2**42, "full", "weight", "more than this machine's"),  # 8 TiB of tensors
]


def test_a_sparse_checkpoint_claiming_gigabytes_is_refused_before_allocating(tmp_path):
    """Issue 15: a checkpoint whose header claimed a 2 GiB mask in a sparse file cost 4.4 GB of
    memory before it was refused. Header-declared sizes are now checked against the file (and
    the machine's memory), and masks against weights, before any tensor is read. The cases run
    in a fresh process, so the peak memory measured is theirs alone."""
    cases = [(str(tmp_path / name), claim, size, beside) for name, claim, size, beside, _ in SPARSE_CASES]
    proc = subprocess.run([sys.executable, "-c", SPARSE_PROBE, json.dumps(cases)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    print("sparse checkpoints:", results)
    for (path, *_), (*_, message), result in zip(cases, SPARSE_CASES, results, strict=True):
        if "skipped" in result:
            continue
        assert result["message"] is not None and message in result["message"] and path in result["message"]
        assert result["seconds"] < 1.0, result
        assert result["rss_growth_mb"] < 200, result


# ---------------------------------------------------------------------------------------------
# Manifests and results (contracts/manifest.py, contracts/results.py)


def artifact_dir(tmp_path: Path) -> Path:
    art = tmp_path / "art"
    art.mkdir()
    for name in ("model.onnx", "dense.onnx"):
        (art / name).write_bytes(b"x")
    return art


def run_document_fuzz(name: str, path: Path, where: str, seed: bytes, mutate, read: Callable[[], object]) -> None:
    path.write_bytes(seed)
    read()  # the seed itself is valid (and any first-use cost is paid outside the deadline)
    tally = Tally(name, where)

    @fuzz_settings(name)
    @given(st.data())
    def case(data):
        path.write_bytes(mutate(data))
        tally.check(read)

    case()
    tally.report()


def manifest_reader(tmp_path):
    art = artifact_dir(tmp_path)
    return art / MANIFEST, str(art), lambda: Manifest.read(art)


def test_the_seed_manifest_and_results_are_valid(tmp_path):
    path, _, read = manifest_reader(tmp_path)
    path.write_bytes(json_bytes(manifest_doc()))
    read()
    (tmp_path / "results.json").write_bytes(json_bytes(results_doc()))
    Results.read(tmp_path / "results.json")


def test_fuzz_manifest_bytes(tmp_path):
    path, where, read = manifest_reader(tmp_path)
    seed = json.dumps(manifest_doc(), indent=1).encode()
    run_document_fuzz("manifest bytes", path, where, seed, lambda data: mutate_bytes(data, seed), read)


def test_fuzz_manifest_structure(tmp_path):
    path, where, read = manifest_reader(tmp_path)
    doc = manifest_doc()
    run_document_fuzz("manifest structure", path, where, json_bytes(doc),
                      lambda data: json_bytes(mutate_structure(data, doc)), read)  # fmt: skip


def test_fuzz_results_bytes(tmp_path):
    path = tmp_path / "results.json"
    seed = json.dumps(results_doc(), indent=1).encode()
    run_document_fuzz("results bytes", path, str(path), seed, lambda data: mutate_bytes(data, seed),
                      lambda: Results.read(path))  # fmt: skip


def test_fuzz_results_structure(tmp_path):
    path = tmp_path / "results.json"
    doc = results_doc()
    run_document_fuzz("results structure", path, str(path), json_bytes(doc),
                      lambda data: json_bytes(mutate_structure(data, doc)), lambda: Results.read(path))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Target files, calibration tables, mask library entries

BOARDS = sorted(SHIPPED.glob("*.toml"))


def use_target(path: Path) -> None:
    target = parse_target(path)
    target.to_dict()
    assert target.cpu.flags is not None and target.threads >= 1


def run_target_fuzz(name: str, tmp_path: Path, structure: bool) -> None:
    tally = Tally(name, str(tmp_path))
    for board in BOARDS:  # every shipped board reads, also through the TOML writer used below
        (tmp_path / board.name).write_bytes(toml_bytes(tomllib.loads(board.read_text())))
        use_target(tmp_path / board.name)

    @fuzz_settings(name)
    @given(st.data())
    def case(data):
        board = data.draw(st.sampled_from(BOARDS), label="board")
        path = tmp_path / board.name  # the name field must match the file name
        raw = board.read_bytes()
        if structure:
            path.write_bytes(toml_bytes(mutate_structure(data, tomllib.loads(raw.decode()))))
        else:
            path.write_bytes(mutate_bytes(data, raw))
        tally.check(lambda: use_target(path))

    case()
    tally.report()


def test_fuzz_target_bytes(tmp_path):
    run_target_fuzz("target bytes", tmp_path, structure=False)


def test_fuzz_target_structure(tmp_path):
    run_target_fuzz("target structure", tmp_path, structure=True)


def use_table(path: Path) -> None:
    from edgeprune.costmodel.table import LayerShape

    table = CostTable.load(path)
    for kind, fmt in table.curves:
        for density in (0.0, 0.05, 0.5, 1.0):
            table.ratio(fmt, kind, density)
            table.ratio(fmt, kind, density, LayerShape.of(64, 64, 3, 14))
    table.to_dict()


HOST_TABLE = SHIPPED / "calibration" / "host.json"


def test_fuzz_calibration_bytes(tmp_path):
    path = tmp_path / "table.json"
    seed = HOST_TABLE.read_bytes()
    run_document_fuzz("calibration bytes", path, str(path), seed, lambda data: mutate_bytes(data, seed),
                      lambda: use_table(path))  # fmt: skip


def test_fuzz_calibration_structure(tmp_path):
    path = tmp_path / "table.json"
    doc = json.loads(HOST_TABLE.read_text())
    run_document_fuzz("calibration structure", path, str(path), json_bytes(doc),
                      lambda data: json_bytes(mutate_structure(data, doc)), lambda: use_table(path))  # fmt: skip


def library_seed(tmp_path: Path) -> tuple[Path, bytes]:
    entry = LibraryEntry("parity", "digit-pool", "pool-cnn", "ab" * 32, 0.8,
                         {"backbone.0:0": 0.5, "backbone.0:1": 0.0, "heads.parity.0:3": 1.25},
                         {"parity": {"top1": 0.91}})  # fmt: skip
    path = save_entry(entry, tmp_path / "lib")
    return path, path.read_bytes()


def use_library(directory: Path) -> None:
    for entry in load_library(directory):
        sorted(entry.scores.items(), key=lambda kv: -kv[1])
        f"{100 * entry.sparsity:.1f}% {json.dumps(entry.metrics)} {entry.source_hash[:12]}"  # noqa: B018


def test_fuzz_library_bytes(tmp_path):
    path, seed = library_seed(tmp_path)
    run_document_fuzz("library bytes", path, str(path), seed, lambda data: mutate_bytes(data, seed),
                      lambda: use_library(path.parent))  # fmt: skip


def test_fuzz_library_structure(tmp_path):
    path, seed = library_seed(tmp_path)
    doc = json.loads(seed)
    run_document_fuzz("library structure", path, str(path), seed, lambda data: json_bytes(mutate_structure(data, doc)),
                      lambda: use_library(path.parent))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The files the fuzzing found, each once: before issue 15 each was a traceback (or read without
# complaint); now each is one line naming the file and what is wrong.

HOST_TOML = (SHIPPED / "host.toml").read_text()
TABLE = json.loads(HOST_TABLE.read_text())
ENTRY = {"format": "edgeprune.library-entry/1", "task": "parity", "workload": "digit-pool", "model": "pool-cnn",
         "source_hash": "ab" * 32, "sparsity": 0.8, "scores": {"backbone.0:0": 0.5}, "metrics": {}}  # fmt: skip


def table_with(**changes) -> bytes:
    return json.dumps({**TABLE, **changes}).encode()


def entry_with(**changes) -> bytes:
    return json.dumps({**ENTRY, **changes}).encode()


# (file, bytes, message now): the comment says what the file did before
@pytest.mark.parametrize(("name", "raw", "message"), [
    ("host.toml", HOST_TOML.replace("machine", "m\xffchine").encode("latin-1"), "not UTF-8 text"),  # UnicodeDecodeError
    ("host.toml", HOST_TOML.encode() + b"x = " + b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),  # RecursionError
    ("host.toml", HOST_TOML.replace("threads = 1", "threads = " + "9" * 5000).encode(), "not valid TOML"),  # ValueError
    ("host.toml", HOST_TOML.replace('library = "host"', 'library = "\\u001b[2J"').encode(),
     "must be printable"),  # a UserError that cleared the terminal
    ("host.toml", HOST_TOML.replace("threads = 1", "threads = 100000").encode(), "between 1 and 256"),  # read
    ("host.toml", HOST_TOML.replace("family_default", "famly_default").encode(), "unknown field famly_default"),  # read
    ("t.json", b"null", "not a JSON object"),  # AttributeError
    ("t.json", b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),  # RecursionError
    ("t.json", table_with(curves=[{"kind": None, "fmt": "csr", "points": [[0.5, 1.0]]}]),
     "field curves.0.kind"),  # TypeError (sorting the curves)
    ("t.json", table_with(curves=[{"kind": "kxk", "fmt": "csr", "points": [[0.5, 1.0], [0.5, 2.0]]}]),
     "two points at one density"),  # ZeroDivisionError in ratio()
    ("t.json", table_with(curves=[{"kind": "kxk", "fmt": "csr", "points": [[0.5, math.nan]]}]), "ratio nan"),  # read
    ("t.json", table_with(threads="4"), "field threads must be an integer"),  # read
    ("e.json", b"null", "not a JSON object"),  # AttributeError
    ("e.json", b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),  # RecursionError
    ("e.json", entry_with(sparsity=None), "field sparsity must be a number"),  # TypeError when listed
    ("e.json", entry_with(scores=[1]), "field scores must be an object"),  # AttributeError when used
    ("e.json", entry_with(scores={"backbone.0:0": math.nan}), "field scores.backbone.0:0 must be a finite"),  # read
], ids=lambda v: v if isinstance(v, str) else "")  # fmt: skip
def test_a_bad_target_table_or_library_entry_found_by_fuzzing_is_one_line(tmp_path, name, raw, message):
    path = tmp_path / name
    path.write_bytes(raw)
    read = {"host.toml": parse_target, "t.json": use_table, "e.json": lambda p: use_library(p.parent)}[name]
    with pytest.raises(UserError, match=re.escape(message)) as info:
        read(path)
    assert str(path) in str(info.value) and str(info.value).isprintable()


def test_a_library_entry_that_is_a_directory_is_one_line(tmp_path):
    (tmp_path / "x.json").mkdir()  # was IsADirectoryError
    with pytest.raises(UserError, match="x.json is malformed .cannot be read"):
        load_library(tmp_path)


def _nan(t):
    t["w/backbone.0.weight"].view(-1)[3] = math.nan


def _two(t):
    t["m/backbone.0.weight"].view(-1)[3] = 2


def _float_mask(t):
    t["m/backbone.0.weight"] = t["m/backbone.0.weight"].float()


def _int_weight(t):
    t["w/backbone.0.weight"] = t["w/backbone.0.weight"].to(torch.int64)


@pytest.mark.parametrize(("tensors", "meta", "message"), [
    (_nan, {}, "weight backbone.0.weight has 1 non-finite value (NaN/Inf)"),  # was read, evaluated at chance
    (_two, {}, "mask backbone.0.weight holds values other than 0 and 1"),  # was read
    (_float_mask, {}, "mask backbone.0.weight has dtype F32"),  # was read
    (_int_weight, {}, "tensor backbone.0.weight has dtype torch.int64, model expects torch.float32"),  # was read
    (None, {"tasks": ["digit", "\x1b[2J"]}, "field tasks.1: '\\x1b[2J' is not a task name"),  # escape on the terminal
    (None, {"tasks": ["digit", "digit"]}, "field tasks: 'digit' is listed twice"),
    (None, {"sparsity": 5.0}, "field sparsity: 5.0 is outside [0, 1]"),  # was read
    (None, {"granularity": {"backbone.0.weight": "block:9999x1"}}, "block:9999x1 does not fit a weight of shape"),
    (None, {"granularity": {"nothing": "element"}}, "field granularity.nothing: the checkpoint has no mask"),
    (None, {"settings": "DEEP"}, "nested too deeply"),  # was RecursionError
    (None, {"settings": "BIG"}, "not valid JSON"),  # was ValueError (an integer of 5,000 digits)
    (None, {"metrics": {"a\x06\nb": 1}}, "field metrics."),  # the key, raw, broke the line
], ids=lambda v: v if isinstance(v, str) else "")  # fmt: skip
def test_a_bad_checkpoint_found_by_fuzzing_is_one_line(checkpoint_seed, tmp_path, digits, tensors, meta, message):
    seed = safetensors.torch.load(checkpoint_seed)
    header, _ = split_safetensors(checkpoint_seed)
    doc = {**json.loads(header["__metadata__"]["edgeprune"]), **meta}
    if tensors is not None:
        tensors(seed)
    text = json.dumps(doc).replace('"DEEP"', "[" * 50_000 + "]" * 50_000).replace('"BIG"', "9" * 5000)
    path = tmp_path / "bad.ept"
    path.write_bytes(safetensors.torch.save(seed, metadata={"edgeprune": text}))
    with pytest.raises(UserError) as info:
        use_checkpoint(path, digits)
    assert message in str(info.value) and str(path) in str(info.value) and str(info.value).isprintable()
