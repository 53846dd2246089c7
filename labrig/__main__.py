"""``python -m labrig`` is ``labrig``."""

from labrig.cli import main

main()
