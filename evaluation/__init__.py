"""Evaluation of the zoo's predictions: metric runners (``metrics``) and bootstrap statistics (``bootstrap``).

Import the submodules directly (``from soundaq.models_zoo.metrics import score_table``); this package file stays
empty of heavy imports so that the CLI's ``--help`` stays fast.
"""
