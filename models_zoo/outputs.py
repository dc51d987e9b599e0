"""What every network returns, and what every batch holds: the contracts shared by all nets."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

#: Keys of a batch produced by the shared data module.
#: mel [B, 3001, 64] float32 (normalised); loudness [B, 15000, 1] float32 (normalised);
#: scene [B] int64 (index into vocab.SCENES); events [B, 15] float32 multi-hot (vocab.EVENTS order);
#: qualities [B, 8] float32 (vocab.QUALITIES order, 1-5); isop [B], isoe [B] float32; clip list[str].
BATCH_KEYS = ("mel", "loudness", "scene", "events", "qualities", "isop", "isoe", "clip")
#: Optional batch key: labelled [B, 3] bool, which label groups (vocab.LABEL_GROUPS: scene, events,
#: qualities with ISOP/ISOE) each clip has labels for. Absent: every group is labelled. The data module
#: adds it when its source lacks a group; the loss and the metrics leave the unlabelled values out.
LABELLED_KEY = "labelled"
#: Per-clip output arrays, as ``SoundscapeModule.predict_step`` returns them: scene_probabilities [B, 3]
#: (softmax), event_probabilities [B, 15] (sigmoid), qualities [B, 8], isop [B], isoe [B].
OUTPUT_KEYS = ("scene_probabilities", "event_probabilities", "qualities", "isop", "isoe")


@dataclass
class NetOutput:
    """One forward pass of any zoo network.

    scene_logits [B, 3] (vocab.SCENES order), event_logits [B, 15] (vocab.EVENTS order),
    qualities [B, 8] (vocab.QUALITIES order), isop [B], isoe [B].
    """

    scene_logits: torch.Tensor
    event_logits: torch.Tensor
    qualities: torch.Tensor
    isop: torch.Tensor
    isoe: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The five tensors by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
