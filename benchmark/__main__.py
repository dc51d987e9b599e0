"""``python -m soundaq.benchmark`` (and ``python -m benchmark`` from a source checkout): the ``soundaq`` command."""
from soundaq.benchmark.cli import main

raise SystemExit(main())
