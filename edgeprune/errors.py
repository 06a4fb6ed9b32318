"""Errors that the CLI turns into one clear line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a missing file, an unknown name, a value out of range."""
