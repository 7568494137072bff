"""A sweep's figures: sample panels, a metric against step and against
wall-clock seconds, and 2-D drifting fields as quivers."""

import json
import os
import re

import numpy as np

from drift_jax.methods import drifting
from drift_jax.train import reporting
from drift_jax.train import runner

PLOT_METRIC = 'eval/energy_distance_ratio'


def has_fields(rows) -> bool:
  """Whether `plot_fields` draws anything for these rows."""
  return any(r['config.method'] == drifting.NAME for r in rows)


def _dataset(run_dir):
  from drift_jax.data import datasets as data_lib
  config = _run_config(run_dir)
  return data_lib.for_run(config)


def _run_config(run_dir):
  import ml_collections
  with open(os.path.join(run_dir, runner.CONFIG_FILE)) as f:
    return ml_collections.ConfigDict(json.load(f))


def plot_samples(rows, workdir):
  first = [r for r in rows if r['seed'] == 0]
  if not first:
    return
  plt = reporting.pyplot()
  cols = min(4, len(first))
  nrows = -(-len(first) // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 3 * nrows),
                           squeeze=False)
  for ax, r in zip(axes.flat, first, strict=False):
    samples = np.load(os.path.join(r['run_dir'], runner.SAMPLES_FILE))
    dataset = _dataset(r['run_dir'])
    if dataset.image_shape is not None:  # a 4 x 4 tile of sample images
      images = reporting.evenly_spaced(samples, 16).reshape(
          (16,) + tuple(dataset.image_shape))
      tile = reporting.tile_images(np.clip((images + 1) / 2, 0, 1), 4, 4,
                                   gap=0)
      ax.imshow(tile.squeeze(), cmap='gray', vmin=0, vmax=1)
    else:
      data = dataset.held_out
      ax.scatter(data[:, 0], data[:, 1], s=0.5, alpha=0.3, c='tab:blue')
      ax.scatter(samples[:, 0], samples[:, 1], s=0.5, alpha=0.3,
                 c='tab:orange')
    ax.set_title(f"{r['point']}\n{PLOT_METRIC.split('/')[-1]} "
                 f"{r.get(PLOT_METRIC, float('nan')):.2f}", fontsize=7)
    ax.set_aspect('equal')
    ax.set_xticks([])
    ax.set_yticks([])
  for ax in list(axes.flat)[len(first):]:
    ax.axis('off')
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, 'samples.png'), dpi=110)
  plt.close(fig)


def plot_curves(rows, workdir, metric=PLOT_METRIC):
  """Mean over seeds of `metric` against step and against wall-clock
  (`time/total_wall_seconds`: the run's time plus its teacher's)."""
  plt = reporting.pyplot()
  slug = 'metric' if metric == PLOT_METRIC else re.sub(r'\W', '_', metric)
  for x_key, file_name in (('step', f'{slug}_vs_step.png'),
                           ('time/total_wall_seconds', f'{slug}_vs_wall.png')):
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r['point'] for r in rows):
      curves = []
      for r in rows:
        if r['point'] != name:
          continue
        records = [rec for rec in reporting.read_metrics(r['run_dir'])
                   if metric in rec]
        curves.append([(rec[x_key], rec[metric]) for rec in records])
      length = min(len(c) for c in curves)
      if not length:
        continue
      xy = np.array([c[:length] for c in curves])  # [seeds, evals, 2]
      ax.plot(xy[..., 0].mean(0), xy[..., 1].mean(0), marker='o', ms=3,
              label=name)
    ax.set_xlabel('generator step' if x_key == 'step'
                  else 'wall-clock seconds (teacher included)')
    ax.set_ylabel(metric + ' (mean over seeds)')
    if metric == PLOT_METRIC:
      ax.set_yscale('log')
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, file_name), dpi=110)
    plt.close(fig)


def plot_fields(rows, workdir, num_arrows=300):
  """Quiver of each 2-D drifting point's field at its final samples
  (positives: held-out data, negatives: the samples themselves)."""
  from drift_jax.parallel import sharding as parallel
  first = [r for r in rows
           if r['seed'] == 0 and r['config.method'] == drifting.NAME]
  if not first:
    return
  plt = reporting.pyplot()
  fig, axes = plt.subplots(1, len(first), figsize=(3.2 * len(first), 3.2),
                           squeeze=False)
  for ax, r in zip(axes.flat, first, strict=True):
    config = _run_config(r['run_dir'])
    samples = np.load(os.path.join(r['run_dir'], runner.SAMPLES_FILE))
    if samples.shape[1] != 2:
      continue
    data = _dataset(r['run_dir']).held_out
    batch = min(2048, len(samples), len(data))
    field_fn = drifting.field_fn_from_config(config, parallel.make_mesh(1))
    v = np.asarray(field_fn(samples[:batch], data[:batch]))
    ax.scatter(data[:, 0], data[:, 1], s=0.5, alpha=0.2, c='tab:blue')
    ax.quiver(samples[:num_arrows, 0], samples[:num_arrows, 1],
              v[:num_arrows, 0], v[:num_arrows, 1], color='tab:red',
              angles='xy', width=0.004)
    ax.set_title(r['point'], fontsize=7)
    ax.set_aspect('equal')
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, 'fields.png'), dpi=110)
  plt.close(fig)
