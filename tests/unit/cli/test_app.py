"""The typer app itself: it builds without PyTorch, prints its version and help, hides the old
--library alias, and a usage error exits 2."""

import os
import subprocess
import sys

from helpers import run_cli


def test_help_lists_the_methods_without_importing_torch():
    script = ("import sys\nfrom edgeprune.cli.main import main\nsys.argv = ['edgeprune', 'prune', '--help']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "assert 'torch' not in sys.modules, 'torch was imported'\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "cut: CUT (arXiv 2504.09803)" in proc.stdout and "l1-filter: whole filters" in proc.stdout


def test_version_and_help(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("edgeprune ")
    code, out, _ = run_cli(["prune", "--help"], capsys)
    assert code == 0 and "--sparsity" in out and "l1-filter" in out


def test_usage_errors_exit_2(capsys):
    code, _, _ = run_cli(["prune", "-w", "digits", "-s", "abc", "-o", "x.ept"], capsys)
    assert code == 2
    code, _, _ = run_cli(["frobnicate"], capsys)
    assert code == 2


def test_library_is_a_hidden_alias_of_mask_library(tmp_path, capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "mask-library" in out
    assert not any(line.strip("│ ").startswith("library ") for line in out.splitlines())
    code, _, err = run_cli(["library", "list", "-l", tmp_path / "none"], capsys)
    assert code == 2 and "mask library not found" in err
