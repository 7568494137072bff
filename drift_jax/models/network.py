"""What a network module declares to the registry (`models/__init__.py`).

A network is one module plus one registry line: the module defines its
Flax NNX class and a `Network` entry per role it fills (generator,
denoiser) with the keys it reads in that role's config section
(`model.generator`, `model.denoiser`), its smoke sizes for `runlocal`,
what it needs (image data; whether it takes class labels), its checks and
its `build`. The registry composes each role's section from the entries,
so no module lists another's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple


def _no_checks(section) -> None:
  del section


class Network(NamedTuple):
  """One network in one role.

  Attributes:
    build: (section, *, dim, image_shape, num_classes, rngs, **role) ->
      the nnx.Module (`role`: `sigma_data` for denoisers).
    config: {key: default} it reads in its role's section.
    smoke: {key: value} of `runlocal`'s seconds-long sizes.
    images: whether it needs image data (`image_shape`).
    conditional: whether it takes class labels.
    validate: (section) -> None, raising ValueError naming the key.
  """
  build: Callable[..., Any]
  config: Mapping[str, Any]
  smoke: Mapping[str, Any] = {}
  images: bool = False
  conditional: bool = False
  validate: Callable[[Any], None] = _no_checks
