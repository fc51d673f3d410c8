"""``python -m pipeline``: the ``dependents`` command, as the console script runs it."""

from pipeline.entry import main

main()
