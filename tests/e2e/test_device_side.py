"""The device side runs without PyTorch: with every import of torch failing (in this process's
children too), the CLI builds, `targets`, `bench` and `verify` run an artifact, and a command
that needs PyTorch says so in one line."""

import json

import pytest
from helpers import cli_without


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory):
    return cli_without(tmp_path_factory.mktemp("no_torch"), "torch")


@pytest.fixture
def artifact(digits_host_artifact):
    return digits_host_artifact  # bench writes its results elsewhere (-o): the artifact is read only


def test_bench_runs_an_artifact_where_torch_cannot_be_imported(no_torch, artifact, tmp_path):
    done = no_torch("bench", artifact, "--seconds", "0.2", "--json", "-o", tmp_path / "r.json")
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["latency"]["sparse"]["runs"] >= 30 and res["target"] == "host"


def test_verify_without_torch_uses_the_dense_model_as_reference(no_torch, artifact):
    done = no_torch("verify", artifact, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["passed"] and "PyTorch is not installed" in doc["reference"]


@pytest.mark.parametrize("args", [["--help"], ["targets", "--json"], ["bench", "--help"], ["calibrate", "--help"],
                                  ["verify", "--help"], ["prune", "--help"]])  # fmt: skip
def test_commands_that_do_not_prune_start_without_torch(no_torch, args):
    done = no_torch(*args)
    assert done.returncode == 0, done.stderr


def test_a_command_that_needs_torch_says_so_in_one_line(no_torch, tmp_path):
    done = no_torch("prune", "-w", "digits", "-s", "0.5", "-o", tmp_path / "x.ept")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "needs PyTorch" in done.stderr
    assert not (tmp_path / "x.ept").exists()
