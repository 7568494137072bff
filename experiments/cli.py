"""Small helpers shared by the absl entry points under experiments/."""

from absl import app


def check_no_arguments(argv) -> None:
  """absl passes leftover positional arguments; none are expected."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')


def check_subset(flag: str, chosen, known) -> None:
  """Raises UsageError naming `--flag` for names not in `known`."""
  unknown = sorted(set(chosen) - set(known))
  if unknown:
    raise app.UsageError(f'--{flag}: unknown {unknown}; known: '
                         f'{sorted(known)}.')
