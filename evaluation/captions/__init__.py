"""Text metrics of captions against reference captions, in two flavours.

- ``paper``: exactly what the SoundSCaper release's ``NLP_metrics/NLP_metrics.py`` computes per clip
  (:mod:`.paper`);
- ``standard``: the COCO caption evaluation as automated audio captioning (DCASE) reports it
  (:mod:`.standard`).

:mod:`.inputs` reads candidate and reference caption tables (and ``soundaq caption``'s
``captions.csv``), :mod:`.scoring` scores them with bootstrap CIs and paired tests, :mod:`.figures`
draws each system's means with their CIs and :mod:`.published` reads the release's per-clip workbook
for the reproduction checks; :mod:`soundaq.human_study.caption_eval` (``soundaq caption-metrics``)
writes the tables, figure and report. Every metric name carries its flavour (``paper/BLEU``,
``standard/CIDEr-D``).
"""
