"""Small helpers shared by the absl entry points under experiments/.

Every mistake a user can make on the command line ends in one line on
stderr naming the flag or key (`parse_flags`, `run_main`); `--traceback`
shows the full trace instead.
"""

import difflib
import os
import pathlib
import re
import sys

from absl import app
from absl import flags

HELP_FLAGS = ('--help', '-h', '-?', '--helpshort', '--helpfull')
# The checkout that holds experiments/ (and configs/): relative config
# paths are also tried from here, so the commands work from any directory.
CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


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


def one_line(text: str) -> str:
  """The message's lines joined, for errors that arrive multi-line."""
  return ' '.join(line.strip() for line in str(text).splitlines()
                  if line.strip())


def run_main(main, argv, *, traceback: bool = False) -> None:
  """Calls main(argv); a preempted run exits with `preemption.EXIT_STATUS`
  and a user error with status 1, each with a one-line message."""
  from drift_jax.train import checkpoint
  from drift_jax.train import preemption
  checkpoint.quiet_worker_errors(not traceback)
  if not traceback:
    sys.unraisablehook = _quiet_closed_loops
  try:
    main(argv)
  except preemption.Preempted as stop:
    print(f'preempted: {stop}', file=sys.stderr)
    sys.exit(preemption.EXIT_STATUS)
  except USER_ERRORS as error:
    if traceback:
      raise
    print(f'error: {one_line(error)} (rerun with --traceback for the full '
          'trace)', file=sys.stderr)
    _exit(1)


def _quiet_closed_loops(unraisable) -> None:
  """Drops the 'Event loop is closed' errors of orbax's callbacks into the
  event loop of a save that failed (that failure is reported in one line,
  `checkpoint.check_errors`); anything else goes to Python's own hook."""
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
    return
  sys.__unraisablehook__(unraisable)


def _exit(status: int) -> None:
  """sys.exit, except in a multi-process run: there JAX's shutdown
  barrier at exit would wait for peers that may have died (the likeliest
  cause of the error) and then abort with a C++ trace."""
  distributed = sys.modules.get('jax._src.distributed')
  if distributed is not None and distributed.global_state.client is not None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
  sys.exit(status)


def _wants_traceback(argv) -> bool:
  return any(a in ('--traceback', '--traceback=true', '--traceback=1')
             for a in argv[1:])


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)


def config_spec(argv) -> tuple[int, str] | None:
  """(index in argv, 'path:args') of the --config flag's value, or None."""
  for i, arg in enumerate(argv[1:], start=1):
    if arg.startswith('--config='):
      return i, arg[len('--config='):]
    if arg == '--config' and i + 1 < len(argv):
      return i + 1, argv[i + 1]
  return None


def resolve_config_path(argv) -> list[str]:
  """argv with --config's file found: as given, else from the checkout;
  a file found in neither is one line naming the flag and the choices."""
  found = config_spec(argv)
  if found is None:
    return list(argv)
  index, spec = found
  path, colon, args = spec.partition(':')
  if os.path.isfile(path):
    return list(argv)
  in_checkout = CHECKOUT / path
  if in_checkout.is_file():
    argv = list(argv)
    resolved = f'{in_checkout}{colon}{args}'
    argv[index] = (resolved if argv[index] == spec
                   else f'--config={resolved}')
    return argv
  known = sorted(str(p.relative_to(CHECKOUT))
                 for p in (CHECKOUT / 'configs').glob('*.py'))
  _fail(f'--config: no config file {path!r} (from {spec!r}); the '
        f"repository's config files: {', '.join(known)}.")


def describe_flag_error(error: flags.Error) -> str:
  """One line for absl's flag errors: a wrong type, a bad config-file
  argument, an unknown or a missing flag."""
  text = str(error)
  if isinstance(error, flags.UnrecognizedFlagError):
    return f'{one_line(text)} (--help lists the flags)'
  missing = re.findall(r'Flag (--\w+) must have a value other than None',
                       text)
  if missing:
    return (f'missing required flag {", ".join(missing)} (--help lists the '
            'flags)')
  head = re.match(r'flag (--[\w.]+)=(.*?): ', text)
  if 'Error whilst parsing config file' in text and head:
    # ml_collections nests the config file's own error in its text; the
    # innermost `XError: message` line is the one the user can act on.
    inner = re.findall(r'^\w*(?:Error|Exception): (.+)$', text, re.M)
    return f'{head.group(1)}={head.group(2)}: {inner[-1] if inner else text}'
  if head:
    reason = text[head.end():].splitlines()[0]
    for pattern, meaning in ((r'invalid literal for int', 'an integer'),
                             (r'could not convert string to float',
                              'a number')):
      if re.search(pattern, reason):
        reason = f'expects {meaning}, got {head.group(2)!r}'
    return f'{head.group(1)}={head.group(2)}: {reason}'
  return one_line(text)


def parse_flags(argv):
  """absl's parser (pass as `app.run(main, flags_parser=parse_flags)`),
  with every command-line mistake reported in one line naming the flag or
  key, a suggestion included where one exists, instead of a traceback.
  `--help` also shows the config (`print_help`)."""
  if any(a in HELP_FLAGS for a in argv[1:]):
    print_help(argv)
    sys.exit(0)
  argv = resolve_config_path(argv)
  if _wants_traceback(argv):
    return flags.FLAGS(argv)
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    _fail(describe_flag_error(error))
  except (AttributeError, KeyError) as error:
    text = str(error.args[0] if error.args else error)
    key = re.search(r'(\w+)', text)  # the first word is the unknown key
    hint = re.search(r'Did you mean "(\w+)"', text)
    message = (f'{key.group(1) if key else text}'
               + (f' (did you mean {hint.group(1)!r}?)' if hint else ''))
    overrides = [a.split('=')[0] for a in argv[1:]
                 if a.startswith('--config.')]
    _fail(f'unknown config key among {overrides}: {message}')


def closest(name: str, known) -> str:
  """' (did you mean 'x'?)' for the nearest of `known`, else ''."""
  match = difflib.get_close_matches(name, list(known), n=1)
  return f' (did you mean {match[0]!r}?)' if match else ''


def print_help(argv) -> None:
  """The entry point's usage and flags; with --config, the config file's
  arguments (its docstring) and every key of the resolved config with its
  default, which `--config.a.b=value` overrides."""
  main = sys.modules['__main__']
  print((main.__doc__ or '').strip() + '\n')
  print('Flags:')
  print(flags.FLAGS.module_help(main) or '  (none)')
  found = config_spec(argv)
  if found is None:
    if 'config' in flags.FLAGS:
      print('\nGive --config FILE to list its arguments and keys; the '
            "repository's config files:")
      for path in sorted((CHECKOUT / 'configs').glob('*.py')):
        doc = _docstring(path)
        print(f'  configs/{path.name}: {doc.splitlines()[0] if doc else ""}')
    return
  spec = resolve_config_path(argv)[found[0]]
  if spec.startswith('--config='):
    spec = spec[len('--config='):]
  path = spec.partition(':')[0]
  print(f'\nConfig file {path}:\n{_docstring(pathlib.Path(path))}')
  print_config(config_for_help(spec))


def _docstring(path: pathlib.Path) -> str:
  import ast
  return ast.get_docstring(ast.parse(path.read_text())) or ''


def config_for_help(spec: str):
  """The config `spec` resolves to with the method's defaults applied."""
  from drift_jax import methods
  from drift_jax.config import config_lib
  try:
    return methods.finalize(config_lib.load_config_file(spec))
  except USER_ERRORS as error:
    _fail(f'--config={spec}: {one_line(error)}')


def print_config(config) -> None:
  """Every key of `config` as `--config.key=value`, one per line."""
  from drift_jax.train import workdir as workdir_lib
  items = workdir_lib.flatten(config.to_dict())
  print(f'\nResolved config ({len(items)} keys; override any with '
        '--config.KEY=VALUE):')
  for key, value in items.items():
    if not key.startswith('defaults_by_method'):
      print(f'  --config.{key}={value!r}')
