"""runtime.kernel_library: the instruction set the kernel library runs is chosen at run time and
can be forced with EDGEPRUNE_ISA; an unknown one is refused by name."""

import os
import subprocess
import sys


def isa_of(env_isa):
    code = (
        "from edgeprune.runtime.kernel_library import check_library, host_library; print(check_library(host_library()))"
    )
    env = {**os.environ, "EDGEPRUNE_ISA": env_isa}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_forcing_an_instruction_set():
    done = isa_of("portable")
    assert done.returncode == 0 and done.stdout.strip() == "portable"
    done = isa_of("sse9")
    assert done.returncode != 0 and "EDGEPRUNE_ISA=sse9 is not one of" in done.stderr
