"""`python -m rnnlab` runs the command line."""

from rnnlab.cli import main

raise SystemExit(main())
