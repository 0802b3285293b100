"""``python -m lorry``: the same as the ``lorry`` command."""

from lorry.cli import main

main()
