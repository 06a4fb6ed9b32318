"""``python -m edgeprune`` runs the CLI."""

from edgeprune.cli.main import main

main()
