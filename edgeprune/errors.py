"""Errors that the CLI turns into one clear line and exit code 2, and how a value read from a
file is shown in that line (a file from elsewhere may hold any text: control characters, escape
sequences, megabytes)."""


class UserError(Exception):
    """Bad input from the user: a missing file, an unknown name, a value out of range."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds like an exception, so every temporary output is removed
    by the ``finally`` that made it, then the command exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_interrupted: list[int] = []  # the signal that arrived, once one has


def interrupt(signum: int) -> Interrupted:
    """Record that ``signum`` asked this process to stop; the exception that unwinds it."""
    _interrupted[:] = [signum]
    return Interrupted(signum)


def forget_interrupt() -> None:
    """A new command in the same process (the tests) starts uninterrupted."""
    _interrupted.clear()


def interrupted() -> Interrupted | None:
    """The interruption this process is unwinding from, if any. Code that records failures and
    goes on (a sweep's cells) re-raises this instead: a cleanup that fails while an interrupt
    unwinds raises an ordinary exception in its place, which must not be taken for the cell's
    own failure."""
    return Interrupted(_interrupted[0]) if _interrupted else None


def show(value: object) -> str:
    """A value for an error line: its repr, on one line, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def named(text: str) -> str:
    """A name for an error line: as it is when printable and short, else :func:`show`n."""
    return text if text.isprintable() and 0 < len(text) <= 80 else show(text)


def one_line(text: object, limit: int = 200) -> str:
    """``text`` (a message, an exception) on one printable line: whitespace runs become one
    space, other control characters are escaped, and it is cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    if not flat.isprintable():
        flat = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in flat)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
