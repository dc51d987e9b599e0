"""Evaluation of the zoo's predictions beyond its metrics: bootstrap statistics (``bootstrap``), the
Spearman analysis of events against affective qualities (``correlation``, ``correlation_report``,
``figures``, ``isd``), a recording over time (``recording_report``, ``timeseries_figures``) and the text
metrics of captions (``captions``).

The metrics themselves (scene accuracy, event AUC, quality MSE, ...) live in models_zoo, under the
training module that logs them: :mod:`soundaq.models_zoo.metrics` (the registry and the scoring,
``score_table``), :mod:`soundaq.models_zoo.metric_definitions` (one class per metric) and
:mod:`soundaq.models_zoo.eval_data` (the data they read). Import the submodules directly; this package
file stays empty of heavy imports so that the CLI's ``--help`` stays fast.
"""
