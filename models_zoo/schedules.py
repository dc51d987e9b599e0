"""Training schedules, named once: the paper's (the default on ARAUS and for any ``--max-epochs``).

Pure constants (no torch import), so command-line parsers can show them as defaults.

The paper's schedule is the original release's training loop (``SoundAQnet/framework/processing.py``
and the ``Other_*`` copies): Adam with learning rate 5e-4, batch 32, up to 100 epochs, early
stopping after 10 epochs without a lower validation ISOPleasant MSE.
"""
from __future__ import annotations

#: Adam learning rate of the original training loops.
PAPER_LR = 5e-4
#: Clips per batch of the original training loops.
PAPER_BATCH_SIZE = 32
#: Epoch bound of the original training loops (early stopping usually ends sooner).
PAPER_MAX_EPOCHS = 100
#: Early stopping patience of the original training loops (epochs without a better val ISOP MSE).
PATIENCE = 10
