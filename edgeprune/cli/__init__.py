"""The ``edgeprune`` command line (typer): one module per stage's commands;
:mod:`edgeprune.cli.main` is the entry point."""
