"""On-device runs over TVM's RPC, on loopback, with the real tracker and servers: one board on
this machine and one emulated aarch64 board (``device serve --emulate``, the emulated Python
verify builds, under qemu-aarch64: its timings mean nothing, its protocol is real). bench over
RPC for an ONNX Runtime and a TVM artifact, fleets, a board killed mid-run, and bad input."""

import json
import os
import shutil
import sys

import pytest
from daemons import Client, Daemon, board, edgeprune, free_port, tracker, wait_registered
from helpers import DIGITS_90, run_cli
from power_trees import RaplTree, Trace

from edgeprune.contracts.results import Results
from edgeprune.export.compile import CompileRequest, compile_artifact

pytestmark = pytest.mark.slow
has_qemu = shutil.which("qemu-aarch64") is not None and shutil.which("aarch64-linux-gnu-g++") is not None
needs_qemu = pytest.mark.skipif(not has_qemu, reason="needs qemu-user and g++-aarch64-linux-gnu")


WATTS = 12.0


def sensor_env(root):
    """A board process that reads its power sensor from ``root`` (a recorded RAPL tree)."""
    return {**os.environ, "EDGEPRUNE_SYSFS_ROOT": str(root)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A tracker with a board of key ``host`` (this machine, with a RAPL counter this process
    advances at 12 W) and one of key ``rpi5`` (emulated)."""
    logs = tmp_path_factory.mktemp("lab")
    daemons = []
    rapl = RaplTree(logs / "sysfs")
    try:
        with Trace(rapl.put, lambda t: WATTS, period_s=0.002):
            t, at = tracker(logs / "tracker.log")
            daemons.append(t)
            daemons.append(board(at, "host", logs / "host.log", env=sensor_env(logs / "sysfs")))
            wait_registered(at, "host")
            if has_qemu:
                daemons.append(board(at, "rpi5", logs / "rpi5.log", "--emulate", "rpi5", timeout_s=900))
                wait_registered(at, "rpi5")
            yield {"at": at, "logs": logs, "daemons": daemons}
    finally:
        for d in daemons:
            d.stop()


@pytest.fixture(scope="module")
def rpi5_artifact(tmp_path_factory, checkpoints):
    art = tmp_path_factory.mktemp("rpi5") / "art"
    compile_artifact(CompileRequest(checkpoints(**DIGITS_90), "rpi5", art))
    return art


@pytest.fixture
def host_art(digits_host_artifact, tmp_path):
    copy = tmp_path / "host-art"
    shutil.copytree(digits_host_artifact, copy)
    return copy


def test_devices_lists_the_boards_by_key_and_whether_free(lab, capsys):
    code, out, _ = run_cli(["devices", "--tracker", lab["at"], "--json"], capsys)
    assert code == 0
    keys = {k["key"]: k for k in json.loads(out)["keys"]}
    assert keys["host"]["free"] == 1 and len(keys["host"]["boards"]) == 1
    assert keys["host"]["boards"][0].startswith("127.0.0.1:")
    code, out, _ = run_cli(["devices", "--tracker", lab["at"]], capsys)
    assert code == 0 and "host" in out and "runs waiting" in out


def test_bench_over_rpc_writes_the_boards_results_and_energy_on_the_callers_side(lab, host_art, capsys):
    code, out, err = run_cli(["bench", host_art, "--device", f"rpc://{lab['at']}/host", "--seconds", "0.3",
                              "--idle-seconds", "0.5", "--block-seconds", "0.3", "--energy-blocks", "2"],
                             capsys)  # fmt: skip
    assert code == 0, err
    r = Results.read(host_art / "results.json")
    assert r.device.remote == f"rpc://{lab['at']}/host" and r.artifact.path == str(host_art)
    assert r.latency["sparse"].runs >= 30 and max(r.agreement.max_rel_error_vs_dense.values()) < 1e-4
    e = r.energy
    assert e is not None and e.backend == "rapl" and str(lab["logs"] / "sysfs") in e.source  # read on the board
    assert e.idle_power_w == pytest.approx(WATTS, rel=0.05)
    assert e.dense.gross_j == pytest.approx(WATTS * e.dense.seconds_per_block / e.dense.inferences_per_block,
                                            rel=0.05)  # fmt: skip
    assert f"rpc://{lab['at']}/host" in " ".join(out.split())


@needs_qemu
def test_bench_over_rpc_on_an_emulated_aarch64_board(lab, rpi5_artifact, tmp_path, capsys):
    art = tmp_path / "art"
    shutil.copytree(rpi5_artifact, art)
    code, _, err = run_cli(["bench", art, "--device", f"rpc://{lab['at']}/rpi5", "--seconds", "0.3"], capsys)
    assert code == 0, err
    r = Results.read(art / "results.json")
    assert r.device.machine == "aarch64" and r.device.isa == "neon" and "emulated by qemu-user" in r.device.cpu
    assert max(r.agreement.max_rel_error_vs_dense.values()) < 1e-4
    assert r.memory.sparse_peak_rss_mib is None and "none where it could not run" in r.memory.method
    assert "vcgencmd is not on PATH" in r.energy_reason  # the rpi5 target's sensor, looked for on the board


def test_a_tvm_artifact_runs_over_rpc(lab, tvm_artifact, tmp_path, capsys):
    art = tmp_path / "tvm"
    shutil.copytree(tvm_artifact, art)
    args = ["bench", art, "--device", f"rpc://{lab['at']}/host", "--seconds", "0.3", "--energy", "none"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    r = Results.read(art / "results.json")
    assert r.device.remote.endswith("/host") and max(r.agreement.max_rel_error_vs_dense.values()) < 1e-4


@needs_qemu
def test_a_tvm_module_for_the_board_runs_on_the_emulated_board(lab, checkpoints, tmp_path, capsys):
    art = tmp_path / "tvm-rpi5"
    compile_artifact(CompileRequest(checkpoints(**DIGITS_90), "rpi5", art, backend="tvm"))
    code, _, err = run_cli(["bench", art, "--device", f"rpc://{lab['at']}/rpi5", "--seconds", "0.3"], capsys)
    assert code == 0, err
    r = Results.read(art / "results.json")
    assert r.device.machine == "aarch64" and max(r.agreement.max_rel_error_vs_dense.values()) < 1e-4


def test_a_session_that_dies_leaves_the_board_serving(host_art, solo):
    import psutil

    at, survivor = solo
    with long_bench(host_art, at) as bench:
        _first_serving([survivor], 60)
        for child in psutil.Process(survivor.proc.pid).children():  # the session, as the OOM killer would
            child.kill()
        code, _, err = bench.finish(60)
    assert code == 2 and "dropped mid-run" in err
    survivor.wait_for("ended abnormally", 30)
    wait_registered(at, "host", timeout_s=30)  # back on the tracker, free


@needs_qemu
def test_an_artifact_for_another_architecture_is_refused_before_upload(lab, host_art, capsys):
    code, _, err = run_cli(["bench", host_art, "--device", f"rpc://{lab['at']}/rpi5"], capsys)
    assert code == 2
    assert "is built for x86_64 (target host); the board of key rpi5 is aarch64: not uploaded" in " ".join(err.split())
    assert not (host_art / "results.json").exists()
    wait_registered(lab["at"], "rpi5", timeout_s=10)  # the refused run's session ended: the board is free again


@needs_qemu
def test_a_fleet_runs_each_artifact_on_the_keys_of_its_target(lab, host_art, rpi5_artifact, tmp_path, capsys):
    arm = tmp_path / "arm"
    shutil.copytree(rpi5_artifact, arm)
    code, out, err = run_cli(["bench", host_art, arm, "--tracker", lab["at"], "--keys", "host,rpi5,jetson-nano",
                              "--seconds", "0.2", "--idle-seconds", "0.3", "--block-seconds", "0.2", "--json"],
                             capsys)  # fmt: skip
    assert code == 0, err
    runs = {r["key"]: r for r in json.loads(out)["runs"]}
    assert set(runs) == {"host", "rpi5"} and all(r["status"] == "ok" for r in runs.values())
    assert Results.read(host_art / "results-host.json").device.machine == "x86_64"
    assert Results.read(arm / "results-rpi5.json").device.machine == "aarch64"


@pytest.fixture
def solo(tmp_path):
    """A tracker of its own with one board of key ``host``, which has a sensor (a recorded RAPL
    tree), so that a long idle baseline keeps the board in its run while the test acts."""
    RaplTree(tmp_path / "sysfs")
    t, at = tracker(tmp_path / "tracker.log")
    one = None
    try:
        one = board(at, "host", tmp_path / "board.log", env=sensor_env(tmp_path / "sysfs"))
        wait_registered(at, "host")
        yield at, one
    finally:
        if one:
            one.stop()
        t.stop()


def long_bench(artifact, at):
    return Client(edgeprune("bench", str(artifact), "--device", f"rpc://{at}/host", "--seconds", "0.1",
                            "--idle-seconds", "60"))  # fmt: skip


def test_a_board_killed_mid_run_is_one_line_and_nothing_is_written(host_art, solo):
    at, doomed = solo
    with long_bench(host_art, at) as bench:
        _first_serving([doomed], 60).stop()
        code, _, err = bench.finish(60)
    assert code == 2
    assert "error: the board of key host dropped mid-run (connection lost: " in " ".join(err.split())
    assert not (host_art / "results.json").exists()


def test_a_fleet_retries_a_dropped_board_once_on_another_of_its_key(host_art, tmp_path):
    t, at = tracker(tmp_path / "tracker.log")
    RaplTree(tmp_path / "sysfs")
    boards: list[Daemon] = []
    try:
        boards = [board(at, "host", tmp_path / f"b{i}.log", env=sensor_env(tmp_path / "sysfs")) for i in range(2)]
        wait_registered(at, "host", 2)
        with Client(edgeprune("bench", str(host_art), "--tracker", at, "--keys", "host", "--seconds", "0.1",
                              "--idle-seconds", "4", "--block-seconds", "0.2", "--energy-blocks", "2",
                              "--json")) as fleet:  # fmt: skip
            _first_serving(boards, 60).stop()
            code, out, err = fleet.finish(180)
        assert code == 0, err
        run = json.loads(out)["runs"][0]
        assert run["status"] == "ok" and run["attempts"] == 2
        assert "dropped" in err and "retrying on another board of host" in " ".join(err.split())
        assert Results.read(host_art / "results-host.json").latency["sparse"].runs >= 30
    finally:
        for b in boards:
            b.stop()
        t.stop()


@needs_qemu
def test_a_fleet_reports_a_board_that_drops_failed_and_completes_the_rest(lab, host_art, rpi5_artifact, tmp_path):
    arm = tmp_path / "arm"
    shutil.copytree(rpi5_artifact, arm)
    host_board = lab["daemons"][1]
    try:
        with Client(edgeprune("bench", str(host_art), str(arm), "--tracker", lab["at"], "--keys", "host,rpi5",
                              "--seconds", "0.1", "--idle-seconds", "20", "--queue-timeout", "10",
                              "--json")) as fleet:  # fmt: skip
            _first_serving([host_board], 60).stop()
            code, out, err = fleet.finish(300)
        assert code == 1, err
        runs = {r["key"]: r for r in json.loads(out)["runs"]}
        assert runs["host"]["status"] == "failed" and runs["rpi5"]["status"] == "ok"
        assert not (host_art / "results-host.json").exists() and (arm / "results-rpi5.json").is_file()
    finally:  # the shared lab gets its host board back
        host_board.stop()
        lab["daemons"][1] = board(lab["at"], "host", lab["logs"] / "host-again.log",
                                  env=sensor_env(lab["logs"] / "sysfs"))
        wait_registered(lab["at"], "host")


def _first_serving(boards: list[Daemon], timeout_s: float) -> Daemon:
    """The board whose log first shows a session, one second into it."""
    import time

    marks = [len(b.text()) for b in boards]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for b, mark in zip(boards, marks, strict=True):
            if "start serving" in b.text()[mark:]:
                time.sleep(1.0)
                return b
        time.sleep(0.05)
    raise AssertionError("no board started a session")


def test_a_board_without_edgeprune_is_named(lab, host_art, tmp_path, capsys):
    port = free_port()
    plain = Daemon([sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port),
                    "--port-end", str(port + 1), "--tracker", lab["at"], "--key", "plain"], tmp_path / "plain.log",
                   env={**os.environ, "TVM_USE_RUNTIME_LIB": "1"}).start()  # fmt: skip
    try:
        wait_registered(lab["at"], "plain")
        code, _, err = run_cli(["bench", host_art, "--device", f"rpc://{lab['at']}/plain"], capsys)
        assert code == 2
        assert "the board of key plain has no edgeprune runtime" in " ".join(err.split())
    finally:
        plain.stop()


def test_serve_refuses_tvms_raw_module_loading(lab):
    import tvm.rpc

    host, port = lab["at"].split(":")
    remote = tvm.rpc.connect_tracker(host, int(port)).request("host", session_timeout=60, max_retry=1)
    try:
        remote.upload(bytearray(b"\x7fELF"), target="payload.so")
        with pytest.raises(Exception, match="load_module is refused by edgeprune device serve"):
            remote.load_module("payload.so")
        with pytest.raises(Exception, match="'../escape' is refused by edgeprune device serve: uploads are plain"):
            remote.upload(bytearray(b"x"), target="../escape")
        assert remote.download("payload.so") == bytearray(b"\x7fELF")
        # Not a boundary, as the README says: TVM's runtime registers functions that load a library
        assert remote.get_function("ffi.ModuleLoadFromFile") is not None
    finally:
        remote._sess = None
        del remote


def test_an_upload_over_the_boards_limit_is_refused(lab, host_art, tmp_path, capsys):
    tiny = board(lab["at"], "tiny", tmp_path / "tiny.log", "--max-upload-mb", "0.01")
    try:
        wait_registered(lab["at"], "tiny")
        code, _, err = run_cli(["bench", host_art, "--device", f"rpc://{lab['at']}/tiny"], capsys)
        assert code == 2
        assert f"the board of key tiny refused the upload of {host_art}: an upload of" in " ".join(err.split())
        assert "this board takes at most 0.01 MiB (--max-upload-mb)" in " ".join(err.split())
        assert not (host_art / "results.json").exists()
    finally:
        tiny.stop()


def test_bad_addresses_and_keys_are_one_line(lab, host_art, capsys):
    dead = f"127.0.0.1:{free_port()}"
    cases = [
        (["bench", host_art, "--device", f"rpc://{dead}/host"], f"cannot reach the tracker at {dead}"),
        (["bench", host_art, "--device", f"rpc://{lab['at']}/nope"], "no board with key 'nope' at the tracker"),
        (["bench", host_art, "--device", "host:9190"], "--device must be rpc://HOST:PORT/KEY"),
        (["bench", host_art, "--tracker", lab["at"]], "needs both --tracker HOST:PORT and --keys"),
        (["bench", host_art, host_art], "several artifacts are benched on a fleet only"),
        (["bench", host_art, "--tracker", lab["at"], "--keys", "rpi5"], "no artifact was built for any of --keys"),
        (["devices", "--tracker", dead], f"cannot reach the tracker at {dead}"),
        (["devices", "--tracker", "nowhere"], "--tracker must be HOST:PORT"),
        (["device", "serve", "--host", "127.0.0.1", "--tracker", dead, "--key", "k"], "cannot reach the tracker"),
        (["device", "serve", "--host", "127.0.0.1", "--tracker", lab["at"], "--key", "a b"], "--key must be"),
    ]
    for args, message in cases:
        code, _, err = run_cli(args, capsys)
        assert code == 2 and message in " ".join(err.split()), (args, err)
    assert not (host_art / "results.json").exists()


def test_serve_has_no_all_interfaces_default(capsys):
    code, _, err = run_cli(["device", "serve", "--tracker", "127.0.0.1:9190", "--key", "k"], capsys)
    assert code == 2 and "--host" in err
