"""Small helpers shared by the absl entry points under experiments/."""

import re
import sys

from absl import app
from absl import flags


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


# What a user can fix (a config key, a file, a workdir in use, a diverged
# run): printed as one line instead of a traceback; --traceback shows it.
USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, FloatingPointError,
               OSError)


def run_main(main, argv, *, traceback: bool = False) -> None:
  """Calls main(argv); a preempted run exits with `preemption.EXIT_STATUS`
  and a user error with status 1, each with a one-line message."""
  from drift_jax.train import preemption
  try:
    main(argv)
  except preemption.Preempted as stop:
    print(f'preempted: {stop}', file=sys.stderr)
    sys.exit(preemption.EXIT_STATUS)
  except USER_ERRORS as error:
    if traceback:
      raise
    print(f'error: {error}\n(rerun with --traceback for the full trace)',
          file=sys.stderr)
    sys.exit(1)


def parse_flags(argv):
  """absl's parser (pass as `app.run(main, flags_parser=parse_flags)`),
  with an unknown `--config.a.b` key reported in one line, suggestion
  included, instead of ml_collections' chained traceback."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as error:
    text = str(error.args[0] if error.args else error)
    key = re.search(r'(\w+)', text)  # the first word is the unknown key
    hint = re.search(r'Did you mean "(\w+)"', text)
    message = (f'{key.group(1) if key else text}'
               + (f' (did you mean {hint.group(1)!r}?)' if hint else ''))
    overrides = [a.split('=')[0] for a in argv[1:]
                 if a.startswith('--config.')]
    print(f'error: unknown config key among {overrides}: {message}',
          file=sys.stderr)
    sys.exit(1)
