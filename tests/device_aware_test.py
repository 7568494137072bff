"""Field evaluation that depends on the backend: the automatic block size
(cache-sized blocks on a CPU, one dense block on an accelerator while it
fits in its memory) and the accelerator's evaluation path (no scan over a
single block, no lax.cond), whose numbers are checked here on the CPU."""

import jax
import numpy as np
import pytest

from drift_jax import fields

GIB = 2**30


@pytest.mark.parametrize('n,t,k,dim,want', [
    (2048, 4096, 1, 2, 256),  # the toy recipe: 2^20 / 4096 rows
    (2048, 4096, 3, 2, 64),
    (8192, 16384, 3, 2, 16),
    (64, 128, 1, 2, 64),  # small: dense
    (8192, 16384, 1, 64, 2048),  # D > 16: 2^25 elements per block
])
def test_cpu_blocks_stay_near_the_cache_budget(n, t, k, dim, want):
  assert fields.auto_block_size(n, t, k, dim, backend='cpu') == want


@pytest.mark.parametrize('backend', ['gpu', 'tpu'])
def test_accelerators_are_dense_while_it_fits(backend):
  # 3 x 8192 x 16384 float32 logits, 4 such arrays: 6 GiB of an 80 GiB H100.
  assert fields.auto_block_size(8192, 16384, 3, 2, backend=backend,
                                memory_bytes=80 * GIB) == 8192
  assert fields.auto_block_size(100, 300, 3, 2, backend=backend,
                                memory_bytes=80 * GIB) == 100
  # 65,536 x 131,072 x 4 arrays x 4 bytes = 128 GiB: blocks of 2^14 rows
  # use 32 GiB, half of the memory... of a 64 GiB device.
  assert fields.auto_block_size(65536, 131072, 1, 64, backend=backend,
                                memory_bytes=64 * GIB) == 16384
  # A 1 GiB device: 512 MiB / (16 bytes x 3 x 16384) = 682 -> 512 rows.
  assert fields.auto_block_size(8192, 16384, 3, 2, backend=backend,
                                memory_bytes=GIB) == 512


def test_accelerator_memory_defaults_to_what_the_device_reports(monkeypatch):
  monkeypatch.setattr(fields.block_size, '_device_memory', lambda: 2 * GIB)
  assert fields.auto_block_size(8192, 16384, 3, 2, backend='gpu') == 1024


@pytest.mark.parametrize('normalization', list(fields.NORMALIZATIONS))
@pytest.mark.parametrize('block_size', [None, 16])
def test_accelerator_evaluation_gives_the_cpu_numbers(monkeypatch,
                                                      normalization,
                                                      block_size):
  x = jax.random.normal(jax.random.key(0), (48, 3))
  pos = jax.random.normal(jax.random.key(1), (64, 3)) + 0.5
  spec = fields.FieldSpec(normalization=normalization,
                          temperatures=(0.02, 0.05, 0.2),
                          normalize_distances=True, normalize_drift=True,
                          block_size=block_size)
  cpu = spec(x, pos, x)
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  accelerator = spec(x, pos, x)
  # The log-space and one-exponential bidirectional formulas, and a scan
  # vs a direct call, differ by float32 rounding only (|V| ~ 1 with the
  # drift normalisation: 1e-5 is ~100 ulp of accumulated round-off).
  np.testing.assert_allclose(accelerator, cpu, atol=1e-5, rtol=1e-5)
