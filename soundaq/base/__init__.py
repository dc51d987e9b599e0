"""The bottom layer of soundaq: what every other layer may import and which imports none of them.

``errors`` (the one-line :class:`~soundaq.base.errors.UserError`), ``fileio`` (atomic writes, hashes),
``paths`` (where the cache lives), ``runs`` (run folders that resume), ``vocab`` (scenes, events,
qualities, ISO/TS 12913-3 coordinates and the predictions-table columns, each named once).
"""
