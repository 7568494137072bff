"""Shared helpers for the runner tests: tiny configs and metric readers."""

from drift_jax import config_lib
from drift_jax import methods
from drift_jax import reporting


def tiny_config(method='drifting', dataset='checkerboard', **train):
  """A runlocal config without plots, with `train` overrides."""
  c = methods.base_config()
  config_lib.runlocal(c)
  c.method = method
  c.data.name = dataset
  c.eval.plot = False
  c.train.update(train)
  return c


def losses(workdir):
  """{step: train/loss} from a run's metrics.jsonl."""
  return {r['step']: r['train/loss'] for r in reporting.read_metrics(workdir)
          if 'train/loss' in r}
