"""A workdir in a bucket: `--workdir gs://bucket/run` (or any `etils.epath`
location: s3://, a network mount) trains in a local copy mirrored there.

A run's files need a local filesystem: the workdir lock (an OS lock),
the append-only metrics.jsonl, TensorBoard's event files and orbax's
asynchronous saves (which reach a bucket through tensorstore, not epath).
So a remote workdir is trained in a local directory (`local_dir`: under
`$DRIFT_JAX_MIRROR_CACHE`, default ~/.cache/drift_jax/mirror), which is
first filled from the remote (`pull`: a preempted TPU VM's successor
resumes from the bucket) and copied back to it (`push`) after every
completed checkpoint save and when the run ends, however it ends.

A push copies the files that are new or changed (by size and
modification time) and removes remote files the local copy no longer has
(checkpoints `keep_checkpoints` dropped). Its order keeps the remote
consistent if it is cut off: checkpoint files before their digest, and
`budget.json`, which names the newest complete checkpoint, last. A
partly copied checkpoint that `budget.json` does not name is one the
runner treats as corrupt (moved aside, the older one restored).
"""

from __future__ import annotations

import hashlib
import os
import re

from etils import epath

from drift_jax.train import workdir as workdir_lib

CACHE_ENV = 'DRIFT_JAX_MIRROR_CACHE'
# Copied last, in this order: what names the newest complete checkpoint.
LAST = ('budget.json',)
# Files up to this size are compared by content, larger ones by size and
# modification time.
SMALL_FILE_BYTES = 1 << 20
ORBAX_TMP = '.orbax-checkpoint-tmp'


def is_remote(path) -> bool:
  """A location with a scheme (gs://, s3://, ...), not a local path."""
  return bool(re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', os.fspath(path)))


def local_dir(remote: str) -> str:
  """The local directory a remote workdir trains in: readable, and unique
  per remote (a hash of the whole URI)."""
  root = os.environ.get(CACHE_ENV) or os.path.join(
      os.path.expanduser('~'), '.cache', 'drift_jax', 'mirror')
  name = re.sub(r'[^A-Za-z0-9._-]+', '_', remote)[-80:]
  digest = hashlib.sha256(remote.encode()).hexdigest()[:12]
  return os.path.join(root, f'{name}-{digest}')


def _mirrored(relative: str) -> bool:
  """Not the lock (a local OS lock), temporary files of an atomic write in
  progress, or an orbax save in progress."""
  parts = relative.split(os.sep)
  return not (parts[-1] in (workdir_lib.LOCK_FILE, workdir_lib.OWNER_FILE)
              or any(workdir_lib.is_temporary(p) or ORBAX_TMP in p
                     for p in parts))


def _files(root: epath.Path) -> dict[str, epath.Path]:
  """{relative path: path} of every mirrored file under `root` ({} if
  absent)."""
  if not root.exists():
    return {}
  out = {}
  for folder, _, names in root.walk():
    folder = epath.Path(folder)
    for name in names:
      path = folder / name
      relative = os.path.relpath(os.fspath(path), os.fspath(root))
      if _mirrored(relative):
        out[relative] = path
  return out


def _order(relative: str) -> tuple:
  """Checkpoint data, then digests, then everything else, `LAST` last."""
  base = os.path.basename(relative)
  if base in LAST:
    return (3, LAST.index(base), relative)
  return (2 if relative.endswith('.digest.json') else 1, 0, relative)


def _copy(src: epath.Path, dst: epath.Path) -> None:
  dst.parent.mkdir(parents=True, exist_ok=True)
  dst.write_bytes(src.read_bytes())


def _changed(source: epath.Path, target: epath.Path | None) -> bool:
  """Whether `target` must be copied again: missing, another size, or
  (small files: configs, metrics, digests, whose rewrites may keep their
  size within one second) other bytes, or (large ones: checkpoint arrays,
  written once) an older modification time."""
  if target is None:
    return True
  a, b = source.stat(), target.stat()
  if a.length != b.length:
    return True
  if a.length <= SMALL_FILE_BYTES:
    return source.read_bytes() != target.read_bytes()
  return a.mtime > b.mtime


def sync(src, dst, *, delete: bool = True) -> int:
  """Makes `dst` hold `src`'s files: copies the new and changed ones in
  `_order`, then (with `delete`) removes the files `src` no longer has.
  Returns how many files were copied."""
  src, dst = epath.Path(src), epath.Path(dst)
  have, want = _files(dst), _files(src)
  copied = 0
  for relative in sorted(want, key=_order):
    if _changed(want[relative], have.get(relative)):
      _copy(want[relative], dst / relative)
      copied += 1
  if delete:
    for relative in sorted(set(have) - set(want)):
      have[relative].unlink()
  return copied


def pull(remote: str, local: str) -> int:
  """Fills the local copy from the remote workdir (nothing if it does not
  exist yet); files only the local copy has are kept. ValueError in one
  line when the remote cannot be reached (epath reaches gs:// through
  gcsfs or TensorFlow, neither of which this project installs)."""
  os.makedirs(local, exist_ok=True)
  try:
    exists = epath.Path(remote).exists()
  except ImportError as e:
    raise ValueError(f'The workdir {remote!r} cannot be reached: {e} '
                     '(`pip install gcsfs` for gs://).') from None
  if not exists:
    return 0
  return sync(remote, local, delete=False)


def push(local: str, remote: str) -> int:
  """Makes the remote workdir equal the local one."""
  return sync(local, remote)


def readable(workdir: str) -> str:
  """A workdir to read a finished or interrupted run from: itself, or for
  a remote one its local copy brought up to date."""
  if not is_remote(workdir):
    return workdir
  local = local_dir(workdir)
  pull(workdir, local)
  return local
