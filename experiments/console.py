"""`drift-jax COMMAND ...`: the entry points under one console script.

  drift-jax train --config configs/toy2d.py --workdir runs/x
  drift-jax sample --workdir runs/x --num_samples 64
  drift-jax compare --suite suites/core.py

Installed by `pip install -e .` (`[project.scripts]` in pyproject.toml), so
`train` and `sample` work from any directory (a relative `--config` path
not found there is taken from the checkout); `compare` and `ablate` write
the results paths their suite and sweep files name, relative to the
directory they are started in, so start them from the checkout root. Each
command takes exactly the flags of its `python -m experiments.X` form.
"""

import runpy
import sys

COMMANDS = {
    'train': ('experiments.main', 'train one run'),
    'sample': ('experiments.sample', 'samples from a trained run'),
    'compare': ('experiments.compare', 'the comparison harness'),
    'ablate': ('experiments.ablate', 'one-factor ablations'),
}


def usage() -> str:
  lines = ['usage: drift-jax COMMAND [flags]   (drift-jax COMMAND --help)', '']
  lines += [f'  {name:8s} {doc} (python -m {module})'
            for name, (module, doc) in COMMANDS.items()]
  return '\n'.join(lines)


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ('-h', '--help', 'help'):
    print(usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  command = argv[1]
  if command not in COMMANDS:
    print(f'error: unknown command {command!r}; one of '
          f'{", ".join(COMMANDS)} (drift-jax --help)', file=sys.stderr)
    sys.exit(2)
  module = COMMANDS[command][0]
  sys.argv = [f'drift-jax {command}', *argv[2:]]
  runpy.run_module(module, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
  main()
