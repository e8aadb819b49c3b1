"""`python -m keygate.cli`: the same as the `keygate` console script."""

from keygate.cli.main import main

main()
