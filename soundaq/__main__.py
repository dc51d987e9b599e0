"""``python -m soundaq``: the same as the ``soundaq`` command."""
from soundaq.benchmark.cli import main

raise SystemExit(main())
