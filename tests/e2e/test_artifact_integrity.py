"""An artifact is checked before use (issue 15, finding 2 and the artifact half of finding 3):
every file is named relative to the artifact and confined to it (no climbing, no absolute path,
no link out, a regular file), and its size and sha256 match the manifest before onnxruntime or
ctypes sees it; anything else is one UserError line naming the file (exit 2), and nothing from a
refused file is ever loaded. A bad model that does match its hash (a bad compile) is one line too,
from bench and from verify."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import run_cli

from edgeprune.contracts.manifest import MANIFEST, Manifest
from edgeprune.errors import UserError
from edgeprune.fsio import sha256_file
from edgeprune.runtime import artifact_files
from edgeprune.runtime.artifact_files import checked_path
from edgeprune.verify.board import failure_summary

LIB = "libedgeprune_ort.so"


@pytest.fixture
def compiled(digits_host_artifact):
    return digits_host_artifact


@pytest.fixture
def art(compiled, tmp_path):
    """A private copy, two levels down so that ``../../x.so`` stays inside ``tmp_path``."""
    dest = tmp_path / "a" / "b" / "art"
    shutil.copytree(compiled, dest)
    return dest


def edit_manifest(art, change):
    doc = json.loads((art / MANIFEST).read_text())
    change(doc["files"])
    (art / MANIFEST).write_text(json.dumps(doc))


def describe(files, role, path, name):
    """``files[role]`` named ``name``, with the true size and sha256 of the file at ``path``."""
    files[role] = {"path": str(name), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def rehash(art, role):
    """Rewrite the manifest's hash of ``role`` to match the file: a bad compile, not tampering."""
    edit_manifest(art, lambda files: describe(files, role, art / files[role]["path"], files[role]["path"]))


def planted_library(path, marker):
    """A shared library whose constructor writes ``marker``: loading it at all leaves a trace."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler")
    src = path.with_suffix(".c")
    src.write_text("#include <stdio.h>\n__attribute__((constructor)) static void planted(void) {\n"
                   f'  FILE *f = fopen("{marker}", "w");\n'
                   '  if (f) { fputs("loaded\\n", f); fclose(f); }\n}\n')  # fmt: skip
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(path), str(src)], check=True, capture_output=True)
    return path


def test_the_planted_library_leaves_a_trace_when_loaded(tmp_path):
    """What makes "no marker" below a proof that a library was not loaded."""
    marker = tmp_path / "loaded"
    lib = planted_library(tmp_path / "x.so", marker)
    subprocess.run([sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])", str(lib)], check=True)
    assert marker.read_text() == "loaded\n"


def bench(art, capsys):
    return run_cli(["bench", art, "--seconds", "0.1", "-o", art.parent / "results.json"], capsys)


def one_line(err):
    return len(err.strip().splitlines()) == 1


# --- hashes -------------------------------------------------------------------------------------


def test_bench_refuses_a_library_with_bytes_appended(art, capsys):
    with (art / LIB).open("ab") as fh:
        fh.write(b"\0" * 64)
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err), err
    assert f"{LIB} does not match the manifest (size differs" in err and "compile it again" in err


def test_verify_refuses_a_library_with_bytes_appended(art, capsys):
    with (art / LIB).open("ab") as fh:
        fh.write(b"\0" * 64)
    code, out, err = run_cli(["verify", art], capsys)
    assert code == 2 and one_line(err) and "PASS" not in out, err
    assert f"{LIB} does not match the manifest" in err


def test_a_library_changed_in_place_is_refused_by_its_sha256(art, capsys):
    data = bytearray((art / LIB).read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (art / LIB).write_bytes(bytes(data))
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err) and f"{LIB} does not match the manifest (sha256 differs)" in err, err


def test_a_replaced_library_is_never_loaded(art, tmp_path, capsys):
    marker = tmp_path / "loaded"
    planted_library(art / LIB, marker)
    code, _, err = bench(art, capsys)
    assert code == 2 and f"{LIB} does not match the manifest" in err, err
    assert not marker.exists(), "the replaced library was loaded (its constructor ran)"


def test_bench_refuses_a_model_replaced_by_the_dense_one(art, capsys):
    shutil.copyfile(art / "dense.onnx", art / "model.onnx")
    code, out, err = bench(art, capsys)
    assert code == 2 and one_line(err) and "faster" not in out, err
    assert "model.onnx does not match the manifest" in err


def test_each_file_is_hashed_once_per_process_and_again_when_it_changes(art, monkeypatch):
    manifest = Manifest.read(art)
    hashed = []
    real_hash = artifact_files._hash
    monkeypatch.setattr(artifact_files, "_hash", lambda p: hashed.append(p.name) or real_hash(p))
    for _ in range(3):
        assert checked_path(art, manifest, "model") == (art / "model.onnx").resolve()
    assert hashed == ["model.onnx"]
    with (art / "model.onnx").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(UserError, match="model.onnx does not match the manifest"):
        checked_path(art, manifest, "model")


# --- confinement --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["climbing", "absolute"])
def test_a_library_path_outside_the_artifact_is_refused_before_loading(where, art, tmp_path, capsys):
    marker = tmp_path / "loaded"
    lib = planted_library(tmp_path / "a" / "x.so", marker)  # art/../../x.so
    path = "../../x.so" if where == "climbing" else lib
    # the manifest describes the outside file truly (size, sha256): only confinement can refuse it
    edit_manifest(art, lambda files: describe(files, "library", lib, path))
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err), err
    assert "field files.library.path" in err and "not a path inside the artifact" in err and "ELF" not in err
    assert not marker.exists(), "a library outside the artifact was loaded"


def test_a_library_linked_out_of_the_artifact_is_refused_before_loading(art, tmp_path, capsys):
    marker = tmp_path / "loaded"
    lib = planted_library(tmp_path / "x.so", marker)
    (art / LIB).unlink()
    (art / LIB).symlink_to(lib)
    edit_manifest(art, lambda files: describe(files, "library", lib, LIB))
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err), err
    assert f"{LIB} leads outside the artifact" in err
    assert not marker.exists(), "a library linked from outside the artifact was loaded"


@pytest.mark.parametrize("where", ["climbing", "absolute", "link"])
def test_a_model_outside_the_artifact_is_refused(where, art, tmp_path, capsys):
    outside = shutil.copyfile(art / "model.onnx", tmp_path / "a" / "model.onnx")  # same bytes, same sha256
    if where == "link":
        (art / "model.onnx").unlink()
        (art / "model.onnx").symlink_to(outside)
        message = "model.onnx leads outside the artifact"
    else:
        path = "../../model.onnx" if where == "climbing" else str(outside)
        edit_manifest(art, lambda files: files["model"].update(path=path))
        message = "field files.model.path"
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err) and message in err, err


def test_a_link_inside_the_artifact_is_followed(art, capsys):
    (art / "sub").mkdir()
    (art / "model.onnx").rename(art / "sub" / "model.onnx")
    (art / "model.onnx").symlink_to(art / "sub" / "model.onnx")
    assert checked_path(art, Manifest.read(art), "model") == (art / "sub" / "model.onnx").resolve()


@pytest.mark.parametrize(("kind", "message"), [
    ("directory", "is not a regular file (it is a directory)"),
    ("fifo", "is not a regular file (it is a FIFO)"),
    ("missing", "model.onnx is missing"),
    ("dangling link", "model.onnx is missing (a link to nothing)"),
])  # fmt: skip
def test_a_model_that_is_not_a_regular_file_is_refused_without_opening_it(kind, message, art, tmp_path, capsys):
    model = art / "model.onnx"
    model.unlink()
    if kind == "directory":
        model.mkdir()
    elif kind == "fifo":
        os.mkfifo(model)  # opening it would block: it must not be opened
    elif kind == "dangling link":
        model.symlink_to(tmp_path / "nothing.onnx")
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err) and message in err, err


def test_a_file_name_with_shell_characters_is_refused(art, capsys):
    (art / "model.onnx").rename(art / "m;touch x.onnx")
    edit_manifest(art, lambda files: files["model"].update(path="m;touch x.onnx"))
    code, _, err = run_cli(["verify", art], capsys)
    assert code == 2 and one_line(err) and "field files.model.path" in err and "not a plain file name" in err, err


# --- a bad file that matches its hash (a bad compile) -------------------------------------------


def test_bench_of_a_truncated_model_with_a_matching_hash_is_one_line(art, capsys):
    model = art / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    rehash(art, "model")
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err), err
    assert "model.onnx is not a valid ONNX model: " in err and "Traceback" not in err


def test_verify_of_a_truncated_model_with_a_matching_hash_says_which_step_failed(art, capsys):
    model = art / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    rehash(art, "model")
    code, _, err = run_cli(["verify", art], capsys)
    assert code == 2 and one_line(err), err
    assert "the artifact failed to run (native)" in err and "model.onnx is not a valid ONNX model: " in err
    assert "Traceback" not in err and 'File "' not in err


def test_a_library_for_another_cpu_with_a_matching_hash_is_refused_by_its_architecture(art, capsys):
    data = bytearray((art / LIB).read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # ELF machine: aarch64
    (art / LIB).write_bytes(bytes(data))
    rehash(art, "library")
    code, _, err = bench(art, capsys)
    assert code == 2 and one_line(err) and "built for aarch64" in err, err


def test_a_failed_run_keeps_its_last_meaningful_lines_on_one_line():
    stderr = """2025 [W:onnxruntime:Default, cpuinfo_utils.cc:22] cpuinfo failed
qemu-aarch64: warning: something about the emulated CPU
Traceback (most recent call last):
  File "run_npz.py", line 28, in main
    sess = ort.InferenceSession(model, so)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
onnxruntime.capi.onnxruntime_pybind11_state.Fail: first problem

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "run_npz.py", line 40, in <module>
RuntimeError: the final problem
"""
    said = failure_summary(1, stderr)
    assert said == ("qemu-aarch64: warning: something about the emulated CPU"
                    " | onnxruntime.capi.onnxruntime_pybind11_state.Fail: first problem"
                    " | RuntimeError: the final problem")  # fmt: skip
    assert failure_summary(-4, "") == "killed by SIGILL"
    assert failure_summary(3, "", "") == "exit code 3, no output"
