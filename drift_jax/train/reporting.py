"""What a run writes for people: metrics.jsonl, TensorBoard, sample plots.

Only process 0 writes (multi-host runs call these on every process; the
others return at once).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil

import jax
import numpy as np
from absl import logging

from drift_jax.train import workdir as workdir_lib

METRICS_FILE = 'metrics.jsonl'


def is_writer() -> bool:
  return jax.process_index() == 0


class MetricWriter:
  """Appends one JSON object per record and mirrors scalars to TensorBoard.

  metrics.jsonl is strict JSON: a non-finite value is written as the
  string "nan", "inf" or "-inf" (`float()` of it gives the value back, and
  `read_metrics` does so). metrics.jsonl is the record; TensorBoard is
  rebuilt from it whenever a writer opens a workdir that has events
  (`rebuild_tensorboard`), so after any sequence of kills and resumes it
  holds exactly metrics.jsonl's steps, none missing (events a killed
  process never flushed) and none twice (events logged past the
  checkpoint a run resumed from). A failed TensorBoard write is a
  warning; the run goes on.
  """

  def __init__(self, workdir: str, start: int = 0, tracker=None):
    del start  # metrics.jsonl was truncated to it; TensorBoard follows
    self._path = os.path.join(workdir, METRICS_FILE)
    self._workdir = workdir
    self._tb = None
    self._tracker = tracker if is_writer() else None
    if is_writer():
      self._tb = rebuild_tensorboard(workdir)

  def write(self, step: int, scalars: dict) -> None:
    """The record to metrics.jsonl, TensorBoard and the tracker; an
    evaluation's sample grid (`plot_path`) too, when it was drawn."""
    scalars = {k: float(v) for k, v in scalars.items()}
    self.write_record(step, scalars)
    if self._tracker is not None:
      self._tracker.log(int(step), scalars)
    if _is_evaluation(scalars):
      self.write_image(step, 'samples', plot_path(self._workdir, step))
    if self._tb is None:
      return
    try:
      for key, value in scalars.items():
        self._tb.add_scalar(key, float(value), int(step))
      self._tb.flush()
    except Exception as error:  # noqa: BLE001  (TensorBoard is optional)
      # Once: a full disk would repeat it every step. The next start
      # rebuilds TensorBoard from metrics.jsonl, these steps included.
      self._tb = None
      logging.warning('TensorBoard write failed at step %d (%s); '
                      'metrics.jsonl has the record, and TensorBoard is '
                      'rebuilt from it when the run resumes.', step, error)

  def write_image(self, step: int, tag: str, png_path: str) -> None:
    """The picture at `png_path` as TensorBoard image `tag` (a missing
    file or a failed write is a warning; the PNG stays in the workdir)."""
    if self._tracker is not None and os.path.exists(png_path):
      self._tracker.image(int(step), tag, png_path)
    if self._tb is None or not os.path.exists(png_path):
      return
    try:
      self._tb.add_image(tag, _png_pixels(png_path), int(step),
                         dataformats='HWC')
      self._tb.flush()
    except Exception as error:  # noqa: BLE001  (TensorBoard is optional)
      logging.warning('TensorBoard image %s failed at step %d (%s).', tag,
                      step, error)

  def write_record(self, step: int, record: dict) -> None:
    """Appends {'step': step, **record} to metrics.jsonl (any JSON values;
    non-finite floats as strings)."""
    if not is_writer():
      return
    line = json.dumps({'step': int(step), **{k: _strict(v) for k, v in
                                             record.items()}},
                      allow_nan=False)
    with open(self._path, 'a') as f:
      f.write(line + '\n')

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
    if self._tracker is not None:
      self._tracker.close()


TENSORBOARD_DIR = 'tensorboard'


def _is_evaluation(record: dict) -> bool:
  return any(key.startswith('eval/') for key in record)


def _png_pixels(path: str) -> np.ndarray:
  """[H, W, 3] uint8 of a PNG (what TensorBoard's add_image takes)."""
  from PIL import Image
  with Image.open(path) as image:
    return np.asarray(image.convert('RGB'))


def _numeric(record: dict) -> dict:
  return {k: float(v) for k, v in record.items() if k != 'step'
          and isinstance(v, (int, float)) and not isinstance(v, bool)}


def rebuild_tensorboard(workdir: str):
  """A SummaryWriter on `workdir/tensorboard` holding exactly what
  metrics.jsonl holds: the old events are removed and every record's
  scalars (and each evaluation's sample grid still in plots/) written
  again. None when TensorBoard fails (a warning; metrics.jsonl is the
  record)."""
  from tensorboardX import SummaryWriter  # optional heavy import
  directory = os.path.join(workdir, TENSORBOARD_DIR)
  try:
    shutil.rmtree(directory, ignore_errors=True)
    writer = SummaryWriter(directory)
    for record in read_metrics(workdir):
      for key, value in _numeric(record).items():
        writer.add_scalar(key, value, int(record['step']))
      png = plot_path(workdir, int(record['step']))
      if _is_evaluation(record) and os.path.exists(png):
        writer.add_image('samples', _png_pixels(png), int(record['step']),
                         dataformats='HWC')
    writer.flush()
    return writer
  except Exception as error:  # noqa: BLE001  (TensorBoard is optional)
    logging.warning('TensorBoard could not be rebuilt in %s (%s); '
                    'metrics.jsonl has every record.', directory, error)
    return None


class WandbTracker:
  """Optional Weights & Biases logging of what metrics.jsonl and TensorBoard
  get (`train.wandb_project`; one W&B run per workdir, resumed with it).
  A failed W&B call is a warning: metrics.jsonl is the record."""

  def __init__(self, project: str, mode: str, workdir: str, config: dict):
    try:
      import wandb
    except ImportError:
      raise ValueError(
          "`train.wandb_project` needs the wandb package (pip install -e "
          "'.[wandb]'), which is not installed.") from None
    self._wandb = wandb
    # The same id for every process that resumes this workdir.
    run_id = 'drift-jax-' + hashlib.sha1(
        os.path.abspath(workdir).encode()).hexdigest()[:16]
    self._run = wandb.init(project=project, mode=mode, dir=workdir,
                           id=run_id, resume='allow', config=config,
                           name=os.path.basename(os.path.abspath(workdir)))

  def _call(self, what, fn):
    try:
      fn()
    except Exception as error:  # noqa: BLE001  (W&B is optional)
      logging.warning('W&B %s failed (%s); metrics.jsonl has the record.',
                      what, error)

  def log(self, step: int, scalars: dict) -> None:
    self._call('log', lambda: self._run.log(scalars, step=step))

  def image(self, step: int, tag: str, png_path: str) -> None:
    self._call('image', lambda: self._run.log(
        {tag: self._wandb.Image(png_path)}, step=step))

  def close(self) -> None:
    self._call('finish', self._run.finish)


def make_tracker(config, workdir: str):
  """The W&B tracker `train.wandb_project` asks for (None: off)."""
  project = config.train.get('wandb_project', '')
  if not project or not is_writer():
    return None
  return WandbTracker(project, config.train.get('wandb_mode', 'online'),
                      workdir, config.to_dict())


def _strict(value):
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # 'nan', 'inf', '-inf'
  return value


def _lenient(value):
  if value in NON_FINITE:
    return float(value)
  return value


NON_FINITE = ('nan', 'inf', '-inf')


# Measured wall time is `time/*`, allotted compute `budget/*`: the wall
# seconds were logged as `budget/*_seconds` before, and are read under
# their new names.
RENAMED_METRICS = {'budget/total_seconds': 'time/total_wall_seconds',
                   'budget/teacher_seconds': 'time/teacher_wall_seconds',
                   'budget/encoder_seconds': 'time/encoder_wall_seconds'}


def read_metrics(workdir: str) -> list[dict]:
  """All records of `workdir/metrics.jsonl` (empty list if none), with the
  non-finite values written as strings turned back into floats and the
  metrics of `RENAMED_METRICS` under their new names."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [{RENAMED_METRICS.get(k, k): _lenient(v)
             for k, v in json.loads(line).items()}
            for line in f if line.strip()]


def truncate_metrics(workdir: str, after_step: int) -> None:
  """Drops records past `after_step` (written after the checkpoint a run
  resumes from), so a resumed run's file reads like an uninterrupted one.
  Atomic: a kill leaves the old file or the new one."""
  if not is_writer():
    return
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return
  kept = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except ValueError:  # a line torn by a kill mid-write
        logging.warning('Dropping an unreadable line of %s.', path)
        continue
      if record['step'] <= after_step:
        kept.append(line.rstrip('\n') + '\n')
  workdir_lib.write_atomic(path, ''.join(kept))


def pyplot():
  """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt
  return plt


def evenly_spaced(samples, count: int) -> np.ndarray:
  """`count` rows of `samples` evenly spaced through it: class-conditional
  samples are class-major, so a picture of them shows every class in
  order, where the first `count` would show one or two classes."""
  picks = np.linspace(0, len(samples) - 1, count).astype(int)
  return np.asarray(samples)[picks]


def tile_images(images, rows: int, cols: int, gap: int = 1,
                background: float = 1.0) -> np.ndarray:
  """Images [N, H, W, C] (N <= rows cols, row-major) in [0, 1] as one
  [rows (H + gap) - gap, cols (W + gap) - gap, C] picture, `gap` pixels of
  `background` between tiles (empty cells are background too)."""
  images = np.asarray(images)
  n, h, w, c = images.shape
  if n > rows * cols:
    raise ValueError(f'{n} images do not fit a {rows} x {cols} grid.')
  out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c),
                background, images.dtype)
  for i in range(n):
    r, col = divmod(i, cols)
    out[r * (h + gap):r * (h + gap) + h,
        col * (w + gap):col * (w + gap) + w] = images[i]
  return out


def class_rows(samples, num_classes: int, cols: int) -> np.ndarray:
  """The first `cols` samples of each class of class-major samples
  (`data.class_major_labels`), row after row: one row per class."""
  samples = np.asarray(samples)
  per_class = len(samples) // num_classes
  take = min(cols, per_class)
  return np.concatenate([samples[c * per_class:c * per_class + take]
                         for c in range(num_classes)])


# The metric a run's summary and plots lead with, in order of preference:
# the one the leaderboard ranks the data by (feature FD on labelled images,
# energy distance elsewhere). (label, value key, floor key).
HEADLINE_METRICS = (
    ('feature FD', 'eval/feature_fd', 'eval/feature_fd_floor'),
    ('energy distance', 'eval/energy_distance',
     'eval/energy_distance_floor'),
)


def headline_metric(metrics: dict) -> tuple[str, str, float]:
  """(label, value key, value / floor) of the first `HEADLINE_METRICS`
  entry `metrics` has (nan ratio when none)."""
  for label, key, floor in HEADLINE_METRICS:
    if key in metrics and floor in metrics:
      return label, key, metrics[key] / metrics[floor]
  return 'energy distance', 'eval/energy_distance', float('nan')


def plot_path(workdir: str, step: int) -> str:
  """Where the runner draws the samples of the evaluation at `step`."""
  return os.path.join(workdir, 'plots', f'samples_{step:07d}.png')


def plot_image_grid(path: str, samples, image_shape, title: str,
                    rows: int = 8, cols: int = 8,
                    num_classes: int = 0, real=None,
                    real_labels=None) -> None:
  """Flat samples (values in [-1, 1]) as a grid of images with a gap
  between tiles: one row per class for class-conditional samples
  (`class_rows`, each row labelled with its class), else rows x cols
  evenly spaced through `samples`. With `real` (flat data images, and
  their `real_labels` when conditional), the same layout of real images
  is drawn beside the samples."""
  if not is_writer():
    return
  plt = pyplot()
  h, w, c = image_shape
  if num_classes:
    cols = min(cols, len(samples) // num_classes)
    rows, picked = num_classes, class_rows(samples, num_classes, cols)
  else:
    picked = evenly_spaced(samples, min(rows * cols, len(samples)))
  panels = [('generated', picked)]
  if real is not None:
    real = np.asarray(real)
    if num_classes and real_labels is not None:
      order = np.argsort(np.asarray(real_labels), kind='stable')
      real = class_rows_of(real[order], np.asarray(real_labels)[order],
                           num_classes, cols)
    else:
      real = evenly_spaced(real, min(rows * cols, len(real)))
    panels.append(('data', real))
  gap = max(1, h // 14)
  fig, axes = plt.subplots(
      1, len(panels), squeeze=False,
      figsize=(len(panels) * (cols * 0.6 + 0.4) + 0.3, rows * 0.6 + 0.7))
  for ax, (name, flat) in zip(axes[0], panels, strict=True):
    images = np.clip((flat + 1) / 2, 0, 1).reshape(-1, h, w, c)
    grid = tile_images(images, rows, cols, gap=gap)
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap='gray', vmin=0,
              vmax=1, interpolation='nearest')
    ax.set_xticks([])
    ax.set_title(name, fontsize=8)
    if num_classes:  # the class of each row, on its left
      ax.set_yticks([r * (h + gap) + h / 2 for r in range(rows)])
      ax.set_yticklabels([str(r) for r in range(rows)], fontsize=6)
      ax.tick_params(length=0)
    else:
      ax.set_yticks([])
    for side in ax.spines.values():
      side.set_visible(False)
  if num_classes:
    axes[0][0].set_ylabel('class', fontsize=7)
  fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def class_rows_of(images, labels, num_classes: int, cols: int) -> np.ndarray:
  """Up to `cols` images of each class 0..C-1, row after row, from
  labelled images (rows with fewer images are padded with background,
  -1, so every class keeps its row)."""
  images, labels = np.asarray(images), np.asarray(labels)
  out = np.full((num_classes * cols, images.shape[1]), -1.0,
                dtype=np.float32)
  for label in range(num_classes):
    chosen = images[labels == label][:cols]
    out[label * cols:label * cols + len(chosen)] = chosen
  return out


def plot_samples(path: str, samples, data, title: str) -> None:
  """Scatter of generated samples over held-out data (first 2 coordinates)."""
  if not is_writer():
    return
  plt = pyplot()
  samples, data = np.asarray(samples), np.asarray(data)
  fig, ax = plt.subplots(figsize=(5, 5))
  if data.shape[1] == 1:  # 1-D data: histograms instead of a scatter
    ax.hist([data[:, 0], samples[:, 0]], bins=80, label=['data', 'samples'],
            histtype='step', density=True)
  else:
    ax.scatter(data[:, 0], data[:, 1], s=1, alpha=0.3, c='tab:blue',
               label='held-out data')
    ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.3, c='tab:orange',
               label='samples')
    ax.set_aspect('equal')
  suffix = '' if data.shape[1] <= 2 else f' (coords 0, 1 of {data.shape[1]})'
  ax.set_title(title + suffix, fontsize=9)
  ax.legend(loc='upper right', markerscale=8, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
