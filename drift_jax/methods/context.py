"""What a method is built from besides its config: the run context.

The runner builds one `RunContext` per run, after it has loaded the data
and resolved the prerequisites the method declared (`methods` registry):
the data's shape, the classes of a class-conditional run, the device mesh,
and the resolved prerequisites (a DMD `Teacher`, a feature encoder). A
method's `make(config, ctx)` reads what it needs from it and nothing else,
so adding a method never widens another method's signature.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple


class Teacher(NamedTuple):
  """A frozen real-data denoiser D(params, x, sigma, labels=None) and what
  it cost to make (0 for the exact oracle)."""
  denoise: Callable[..., Any]
  params: Any  # pytree of frozen arrays (None for the oracle)
  steps: int = 0  # training steps spent on it
  seconds: float = 0.0  # wall time spent training it


@dataclasses.dataclass(frozen=True)
class RunContext:
  """Everything a method's constructor receives besides the config.

  Attributes:
    dim: flat data dimension D (H W C for images).
    mesh: the `('data', 'fsdp')` device mesh of the run.
    image_shape: (H, W, C) for image data, else None.
    num_classes: classes of a class-conditional run (0: unconditional).
    prerequisites: resolved prerequisites by name ('teacher', 'encoder').
    data: the run's `data.Dataset`, for a method whose constants hold its
      training set (the classifier); a generator learns from the runner's
      batches instead.
  """
  dim: int
  mesh: Any
  image_shape: tuple[int, int, int] | None = None
  num_classes: int = 0
  prerequisites: Mapping[str, Any] = dataclasses.field(
      default_factory=lambda: types.MappingProxyType({}))
  data: Any = None

  def __post_init__(self):
    object.__setattr__(self, 'prerequisites',
                       types.MappingProxyType(dict(self.prerequisites)))

  def get(self, name: str, default=None):
    """The resolved prerequisite `name`, or `default`."""
    return self.prerequisites.get(name, default)


class Prerequisite(NamedTuple):
  """A run a method needs before its first step, resolved by the runner.

  Attributes:
    kind: 'oracle_teacher' (the exact mixture denoiser), 'teacher' (a
      diffusion run), 'encoder' (a classifier run used as a frozen
      feature encoder) or 'classifier' (the evaluation classifier, which
      the runner adds for labelled images).
    choice: `workdir.TRAIN_HERE` (train it in the student's workdir) or the
      directory of a finished one (ignored for the oracle).
    run_config: the config the prerequisite is trained with when
      `choice` is `TRAIN_HERE` (a whole run of another method); left
      empty, the kind's own (`prerequisites.KINDS`) fills it in.
    length_key: the config key of that run's length in steps (e.g.
      'dmd.teacher_steps'), which a study that allots compute writes.
    share_key: the config key of that run's share of a study's budget
      (e.g. 'dmd.teacher_share'), one of its owner's search axes. With
      both keys, a study pays the run from the method's budget
      (`studies.budget`); without them it is not charged by a study.
  """
  kind: str
  choice: str = ''
  run_config: Any = None
  length_key: str = ''
  share_key: str = ''
