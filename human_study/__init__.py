"""Expert-jury questionnaires: read filled workbooks and published averages into one tidy table,
then compute the statistics, reliability, figures and report of ``soundaq jury``.

Modules: ``dimensions`` (rating scales and the overall-score formula), ``issues`` (problems found
in input files), ``questionnaire`` (per-participant workbooks + un-blinding key), ``published``
(the per-clip averages workbook), ``jury`` (descriptive statistics and paired tests),
``reliability`` (ICC and Krippendorff's alpha), ``figures`` and ``report``.
"""
