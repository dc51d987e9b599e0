"""What defines a leaderboard run: the data, the models, the training schedule, the seed.

Schedules (soundaq.models_zoo.schedules): each data source names its default preset
(``DataSource.schedule``): the embedded set the ``embedded`` preset (an equal budget of training clips
per model), ARAUS and your own data the paper's schedule; asking for epochs (``--max-epochs``) selects
the paper's schedule everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from soundaq.base.errors import UserError
from soundaq.models_zoo.schedules import PAPER, PAPER_BATCH_SIZE, SCHEDULES, Schedule

#: Epoch bound for ARAUS when --max-epochs is not given (the original loops; early stopping ends sooner).
ARAUS_MAX_EPOCHS = PAPER.max_epochs
#: Clips per batch of the throughput measurement.
THROUGHPUT_BATCH = 8


class LeaderboardError(UserError):
    """Bad leaderboard arguments (one line, exit code 2)."""


@dataclass
class Settings:
    """What defines a leaderboard run (everything in :meth:`identity` must match to resume).

    ``schedule`` names a preset (``embedded``, ``paper``) or is None: ``embedded`` on the embedded set
    unless ``max_epochs`` is given, else ``paper``. ``budget_clips`` and ``batch_size`` override the
    preset's values; ``max_epochs`` selects epochs (and the paper's schedule when no preset is named).
    """

    out: Path
    data: str = "embedded"
    labels: Path | None = None
    audio: Path | None = None
    features: Path | None = None
    araus: Path | None = None              # ARAUS's own download (--araus DIR): stimuli mixed from its components
    calibration: Any = None                # a models_zoo.features.Calibration of the audio (None: the default)
    models: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)   # import paths of plug-in nets (re-registered in workers)
    schedule: str | None = None
    max_epochs: int | None = None
    budget_clips: int | None = None
    checkpoints: Path | str | None = None  # a folder of <MODEL>.ckpt, or PRETRAINED (the release's weights)
    seed: int = 0
    seeds: list[int] | None = None         # training seeds of a repeated-runs grid (None: ``seed`` alone)
    in_grid: bool = False                  # one seed's run of a grid of several (the terminal names its seed)
    protocol: str = "published"           # published: the split as distributed; araus: ARAUS's fold rotations
    rotation: int | None = None            # araus: this run's validation fold (1-5; set per rotation)
    batch_size: int | None = None
    n_resamples: int = 1000
    cache_dir: Path | None = None
    embedded_clips: int | None = None
    workers: int = 1
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    precision: str | None = None           # None: chosen per net (soundaq.models_zoo.cpu_policy.choose_precision)
    progress: bool = True
    head_init: bool = True                 # start the head biases at the training base rates (models_zoo.head_init)
    correlate: bool = True                 # Spearman analysis + figures of the leader's predictions
    figures: bool = True                   # the run's own figures (a protocol's rotations leave them to the whole)
    loss_weighting: str | None = None      # --loss-weighting of every model (None: the plain sum)

    def training_schedule(self) -> Schedule:
        """The schedule every model of this run trains with (one for all: the comparison is fair)."""
        if self.schedule is not None:
            try:
                base = SCHEDULES[self.schedule]
            except KeyError:
                raise LeaderboardError(f"unknown --schedule {self.schedule!r}; fix: use one of "
                                       f"{', '.join(SCHEDULES)}") from None
        elif self.max_epochs is None:
            from soundaq.models_zoo.data.sources import source_class

            base = SCHEDULES.get(source_class(self.data).schedule, PAPER)   # the source's default preset
        else:
            base = PAPER
        if self.max_epochs is not None and self.budget_clips is not None:
            raise LeaderboardError("--max-epochs and --budget-clips exclude each other; fix: keep one")
        if self.max_epochs is not None:      # epochs, with the paper's early stopping
            base = replace(base, budget_clips=None, max_epochs=self.max_epochs, patience=base.patience or PAPER.patience)
        if self.budget_clips is not None:    # an equal clip budget
            base = replace(base, budget_clips=self.budget_clips, max_epochs=None)
        return base.with_overrides(batch_size=self.batch_size)

    @property
    def loader_batch_size(self) -> int:
        """Clips per batch of the data module (training and evaluation)."""
        if self.checkpoints is not None:
            return self.batch_size or PAPER_BATCH_SIZE
        return self.training_schedule().batch_size

    def unit_name(self, model: str) -> str:
        """``model``, after its training seed in a repeated-runs grid and before the rotation in ARAUS's
        protocol, as the terminal names a unit (``seed 1 AD_CNN (rotation 3)``).
        """
        seed = f"seed {self.seed} " if self.in_grid or (self.seeds and len(self.seeds) > 1) else ""
        return seed + model + (f" (rotation {self.rotation})" if self.rotation is not None else "")

    def identity(self) -> dict:
        """The arguments that change a run's results, as a JSON-able dict: ``run.json`` compares them to decide whether
        an existing ``--out`` folder is resumed or refused.
        """
        return {"data": self.data, "labels": _str(self.labels), "audio": _str(self.audio),
                "features": _str(self.features), **({"araus": _str(self.araus)} if self.araus else {}),
                "models": list(self.models),
                "schedule": self.training_schedule().as_dict() if self.checkpoints is None else None,
                "checkpoints": self.checkpoints if is_pretrained(self.checkpoints) else _str(self.checkpoints),
                "seed": self.seed, "batch_size": self.loader_batch_size,
                "n_resamples": self.n_resamples, "embedded_clips": self.embedded_clips,
                "head_init": self.head_init if self.checkpoints is None else None,
                **({"precision": self.precision} if self.precision else {}),
                # how many devices train, and how, change the batches (soundaq.base.runs.identity_problem)
                **({"devices": self.devices, "strategy": self.strategy} if self.checkpoints is None else {}),
                **({"protocol": self.protocol, "rotation": self.rotation} if self.protocol != "published" else {}),
                **({"loss_weighting": self.loss_weighting} if self.loss_weighting else {}),
                **({"calibration": self.calibration.key()} if self.calibration is not None else {})}


def parse_seeds(text: str) -> list[int]:
    """The training seeds of ``--seeds``: ranges and lists, ``0-9``, ``0,3,5`` or ``0-2,7`` (in the given
    order, each at most once).

    Raises:
        LeaderboardError: anything else (one line naming --seeds and the fix).
    """
    import re

    fix = "; fix: give non-negative integers as a range or a list, e.g. --seeds 0-9 or --seeds 0,3,5"
    seeds: list[int] = []
    parts = [p.strip() for p in str(text).split(",")]
    for part in parts:
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise LeaderboardError(f"--seeds {text!r}: {part!r} is not a seed or a range{fix}")
        first, last = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if last < first:
            raise LeaderboardError(f"--seeds {text!r}: the range {part} runs backwards{fix}")
        seeds += range(first, last + 1)
    repeated = sorted({x for x in seeds if seeds.count(x) > 1})
    if repeated:
        raise LeaderboardError(f"--seeds {text!r}: seed {repeated[0]} is given twice{fix}")
    if len(seeds) > 1000:
        raise LeaderboardError(f"--seeds {text!r}: {len(seeds)} seeds; fix: give at most 1000")
    return seeds


def seeds_text(seeds: list[int]) -> str:
    """``0-9`` for a run of consecutive seeds, else ``0, 3, 5``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _str(p) -> str | None:
    return str(Path(p).expanduser().resolve()) if p is not None else None


#: ``--checkpoints pretrained``: each model's released weights (downloaded into the cache on first use).
PRETRAINED = "pretrained"


def is_pretrained(checkpoints) -> bool:
    """True when ``--checkpoints`` asks for the release's weights rather than a folder (a folder named
    ``pretrained`` is spelt ``./pretrained``).
    """
    return isinstance(checkpoints, str) and checkpoints == PRETRAINED


def make_datamodule(s: Settings, norm_stats=None):
    """The run's data module (the checkpoint's own statistics when ``norm_stats`` is given); the source
    checks its own options (one line saying what it needs).
    """
    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule

    if s.rotation is not None:       # ARAUS's protocol: the source's clips re-split by fold
        from soundaq.models_zoo.data.sources import make_source
        from soundaq.models_zoo.data.sources.rotation import FoldRotation

        inner = make_source(s.data, labels_dir=s.labels, audio_dir=s.audio, features_dir=s.features, araus_dir=s.araus,
                            embedded_clips=s.embedded_clips, cache_dir=s.cache_dir, calibration=s.calibration,
                            progress=s.progress)
        return SoundscapeDataModule(source=FoldRotation(inner, s.rotation), cache_dir=s.cache_dir,
                                    batch_size=s.loader_batch_size, norm_stats=norm_stats, seed=s.seed,
                                    calibration=s.calibration, progress=s.progress, in_memory="auto")
    return SoundscapeDataModule(source=s.data, labels_dir=s.labels, audio_dir=s.audio, features_dir=s.features,
                                araus_dir=s.araus,
                                cache_dir=s.cache_dir, batch_size=s.loader_batch_size, norm_stats=norm_stats,
                                seed=s.seed, embedded_clips=s.embedded_clips, calibration=s.calibration,
                                progress=s.progress, in_memory="auto")


def loss_setting(s: Settings) -> tuple[bool, tuple[float, ...] | None]:
    """``(uncertainty_weighting, loss_weights)`` of ``s.loss_weighting`` (models_zoo.losses).

    Raises:
        LeaderboardError: a value :func:`~soundaq.models_zoo.losses.parse_loss_weighting` refuses (one line).
    """
    from soundaq.models_zoo.losses import parse_loss_weighting

    if not s.loss_weighting:
        return False, None
    try:
        parsed = parse_loss_weighting(s.loss_weighting)
    except ValueError as err:
        raise LeaderboardError(str(err)) from None
    if isinstance(parsed, str):
        return True, None
    return False, parsed
