"""workload.registry: a user's workload file resolves; a checkpoint's workload reference is
absolute for files, and an override wins over a reference that no longer resolves."""

from helpers import write_user_workload

from edgeprune.workload.base import Workload
from edgeprune.workload.registry import resolve_workload


def test_user_workload_file_resolves(tmp_path):
    wl = resolve_workload(f"{write_user_workload(tmp_path)}:WORKLOAD")
    assert isinstance(wl, Workload) and wl.name == "mine" and wl.default_model == "twotask"


def test_checkpoint_workload_prefers_the_override_and_records_absolute_files(tmp_path, monkeypatch):
    from edgeprune.workload.registry import checkpoint_workload, workload_reference

    monkeypatch.chdir(tmp_path)
    assert workload_reference("wl/my.py:WL") == f"{tmp_path / 'wl' / 'my.py'}:WL"
    assert workload_reference("digits") == "digits" and workload_reference("pkg.mod:WL") == "pkg.mod:WL"
    assert checkpoint_workload("gone.py:WL", "digits").name == "digits"
