"""Shared helpers for the tests: tiny configs, configs loaded as absl does,
metric readers."""

from absl import flags
from ml_collections import config_flags

from drift_jax import methods
from drift_jax.train import reporting


def tiny_config(method='drifting', dataset='checkerboard', **train):
  """A runlocal config without plots, with `train` overrides."""
  c = methods.base_config()
  methods.runlocal(c)
  c.method = method
  c.data.name = dataset
  c.eval.plot = False
  c.train.update(train)
  return c


def losses(workdir):
  """{step: train/loss} from a run's metrics.jsonl."""
  return {r['step']: r['train/loss'] for r in reporting.read_metrics(workdir)
          if 'train/loss' in r}


def load_flags_config(argv_tail):
  """(config, overrides) as experiments/main.py gets them from
  `--config=FILE:ARGS --config.a.b=...`."""
  argv = ['main'] + argv_tail
  values = flags.FlagValues()
  # sys_argv: config_flags finds the --config.a.b overrides in it.
  config_flags.DEFINE_config_file('config', None, flag_values=values,
                                  lock_config=True, sys_argv=argv)
  values(argv)
  return values.config, config_flags.get_override_values(values['config'])
