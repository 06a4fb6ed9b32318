"""The ``edgeprune`` command line: thin, it parses, calls the library and prints.

Exit codes: 0 success, 1 failure, 2 bad usage or bad input (one line on stderr, no traceback).
Human output goes to stdout; progress goes to stderr; ``--json`` prints one JSON document.
Building the app imports typer and rich only: each command imports what it runs, so commands
that do not prune (``--help``, ``targets``, ``bench``, ``verify``, ``calibrate``) start without
PyTorch, as they must on a board that has none.
"""

from __future__ import annotations

import signal
import sys

from rich.markup import escape

import edgeprune.cli.deploy  # noqa: F401, I001
import edgeprune.cli.devices  # noqa: F401

# Each module registers its commands on the shared app; the order is the order of --help.
import edgeprune.cli.prune  # noqa: F401
import edgeprune.cli.sweep  # noqa: F401
from edgeprune.cli.common import app, err
from edgeprune.errors import Interrupted, UserError, forget_interrupt, interrupt, interrupted


def _interrupt(signum: int, _frame: object) -> None:
    # A second signal during the cleanup ends the process at once; the next run sweeps what is left.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise interrupt(signum)


def main() -> None:
    """Console entry point: user errors become one line and exit code 2; SIGINT and SIGTERM
    clean up, say "interrupted" and exit 130 and 143."""
    forget_interrupt()
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run()
    finally:  # an in-process caller (the tests) gets its own handlers back
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run() -> None:
    try:
        _app()
    except Interrupted as exc:
        err.print("interrupted", highlight=False)
        sys.exit(128 + exc.signum)


def _app() -> None:
    """The app, with an interrupt that a cleanup turned into another exception or an exit code
    (a failed cell, a failed command) raised again as the interrupt it was."""
    try:
        _commands()
    except BaseException:
        stop = interrupted()
        if stop is not None:
            raise stop from None
        raise


def _commands() -> None:
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # file text is not markup
        sys.exit(2)
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "torch":
            raise
        err.print("[red]error:[/] this command needs PyTorch, which this runtime install does not have "
                  "(bench, verify and targets run without it)", highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(2)
