"""The ``edgeprune`` command line: thin, it parses, calls the library and prints.

Exit codes: 0 success, 1 failure, 2 bad usage or bad input (one line on stderr, no traceback).
Human output goes to stdout; progress goes to stderr; ``--json`` prints one JSON document.
Building the app imports typer and rich only: each command imports what it runs, so commands
that do not prune (``--help``, ``targets``, ``bench``, ``verify``, ``calibrate``) start without
PyTorch, as they must on a board that has none.
"""

from __future__ import annotations

import sys

import edgeprune.cli.deploy  # noqa: F401, I001

# Each module registers its commands on the shared app; the order is the order of --help.
import edgeprune.cli.prune  # noqa: F401
from edgeprune.cli.common import app, err
from edgeprune.errors import UserError


def main() -> None:
    """Console entry point: user errors become one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "torch":
            raise
        err.print("[red]error:[/] this command needs PyTorch, which this runtime install does not have "
                  "(bench, verify and targets run without it)", highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
