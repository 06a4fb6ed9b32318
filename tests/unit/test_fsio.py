"""How outputs are written (edgeprune.fsio): checked before work, replaced atomically, one
writer at a time, stale temporaries swept, directories with the umask's mode (issue 15, §4, §5, §7)."""

import os
import stat

import pytest

from edgeprune.errors import UserError
from edgeprune.fsio import atomic_path, check_output, output_lock, staged_dir, write_text_atomic


def test_an_artifact_directory_gets_the_mode_of_the_files_in_it(tmp_path):
    old = os.umask(0o022)
    try:
        with staged_dir(tmp_path / "art", force=False) as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "art").stat().st_mode) == 0o755


def test_force_replaces_a_directory_whole_and_leaves_no_temporaries(tmp_path):
    dest = tmp_path / "art"
    with staged_dir(dest, force=False) as tmp:
        (tmp / "old").write_text("1")
    with staged_dir(dest, force=True) as tmp:
        assert (dest / "old").is_file()  # the old output stays in place while the new one is written
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in dest.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_a_failed_write_keeps_the_old_output(tmp_path):
    dest = tmp_path / "r.json"
    write_text_atomic(dest, "old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert dest.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_second_writer_of_one_output_is_refused(tmp_path):
    dest = tmp_path / "r.json"
    with output_lock(dest), pytest.raises(UserError, match="another edgeprune is writing"):
        write_text_atomic(dest, "x")


def test_the_next_writer_sweeps_what_a_killed_one_left(tmp_path):
    (tmp_path / ".r.json.edgeprune-abc.tmp").write_text("half")
    (tmp_path / ".art.edgeprune-xyz").mkdir()
    (tmp_path / ".art.edgeprune-xyz" / "model.onnx").write_text("half")
    write_text_atomic(tmp_path / "r.json", "x")
    with staged_dir(tmp_path / "art", force=False) as tmp:
        (tmp / "f").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "r.json"]


@pytest.mark.parametrize(("make", "kwargs", "message"), [
    (lambda p: p.write_text("x"), {}, "exists; use --force to replace it"),
    (lambda p: p.mkdir(), {"directory": True}, "exists; use --force to replace it"),
    (lambda p: p.mkdir(), {}, "is a directory; give a file name"),
    (lambda p: p.write_text("x"), {"directory": True}, "exists and is not a directory"),
])  # fmt: skip
def test_an_existing_output_is_refused_with_one_wording(tmp_path, make, kwargs, message):
    out = tmp_path / "out"
    make(out)
    with pytest.raises(UserError, match=message):
        check_output(out, False, **kwargs)


def test_an_output_under_a_file_is_refused_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a directory"):
        check_output(tmp_path / "file" / "out.ept", False)
