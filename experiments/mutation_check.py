r"""Checks that the tests fail when the math is perturbed (mutation check).

    JAX_NUM_CPU_DEVICES=8 python -m experiments.mutation_check

Copies the package and tests to a temporary folder, applies one deliberate
bug at a time there (this checkout is never modified), runs the tests that
should notice, and prints CAUGHT or SURVIVED. Exit code 1 if any survives.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

from absl import app

from experiments import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent

# (name, file, original line, mutated line, tests that must fail)
MUTS = [
 ('drop self-mask', 'drift_jax/fields/kernel_weighted.py', "    logk = jnp.where(is_self[None], -jnp.inf, logk)", "    logk = logk", 'tests/fields_test.py'),
 ('drop self-mask (bidirectional)', 'drift_jax/fields/bidirectional.py', "      return sq, jnp.where(is_self, jnp.inf, sq)", "      return sq, sq", 'tests/fields_test.py'),
 ('column sums to the wrong power', 'drift_jax/fields/bidirectional.py', "  c = w / jnp.sqrt(col_sum)  # [K, T]", "  c = w / col_sum  # [K, T]", 'tests/fields_test.py'),
 ('row sums lose their shift', 'drift_jax/fields/bidirectional.py', "      h = jnp.exp(0.5 * (m_b[k] - top[k]))  # [B]", "      h = jnp.ones_like(m_b[k])  # [B]", 'tests/fields_test.py'),
 ('row cross-weighting swapped', 'drift_jax/fields/kernel_weighted.py', "  return _scaled_halves(mm(a_pos * s_neg, targets[:n_pos]),", "  return _scaled_halves(mm(a_pos * s_pos, targets[:n_pos]),", 'tests/fields_test.py'),
 ('no floor', 'drift_jax/fields/kernel_weighted.py', "    log_both = jnp.maximum(log_both, jnp.log(spec.floor))", "    log_both = log_both", 'tests/fields_test.py'),
 ('padding enters column sums', 'drift_jax/fields/bidirectional.py', "jnp.exp(jnp.where(ok[:, None], logk, -jnp.inf)", "jnp.exp(logk", 'tests/fields_test.py'),
 ('coord scale without sqrt(D)', 'drift_jax/fields/temperatures.py', "  coord_scale = (scale / jnp.sqrt(fields.shape[-1])", "  coord_scale = (scale", 'tests/fields_test.py'),
 ('laplace lambda wrong', 'drift_jax/theory/scores.py', "  lam = tau * (tau + jnp.sum(weights * r, axis=-1))", "  lam = tau * (tau + 0.9 * jnp.sum(weights * r, axis=-1))", 'tests/scores_test.py'),
 ('kde sigma not squared', 'drift_jax/theory/scores.py', "/ (2.0 * sig**2)", "/ (2.0 * sig)", 'tests/scores_test.py tests/fields_test.py'),
 ('gmm denoiser no shrink', 'drift_jax/theory/distributions.py', "proj * self._evals[None] / var", "proj", 'tests/distributions_test.py'),
 ('gaussian kernel tau not squared', 'drift_jax/fields/kernels.py', "  return -sq / (2.0 * tau * tau)", "  return -sq / (2.0 * tau)", 'tests/fields_test.py tests/kernels_test.py'),
 ('no centring in distances', 'drift_jax/fields/kernels.py', "  center = jnp.mean(y, axis=0)", "  center = 0.0 * jnp.mean(y, axis=0)", 'tests/kernels_test.py'),
 ('no stop-gradient', 'drift_jax/fields/spec.py', "  x, pos, neg = (lax.stop_gradient(a) for a in (x, pos, neg))", "  pass", 'tests/fields_test.py'),
 # The drifting family (conservative.py, sinkhorn_field.py, the schedule).
 ('kernel-gradient without the slope', 'drift_jax/fields/conservative.py', "  a_pos = jax.nn.softmax(logits[:, :n_pos], axis=-1) * c[:, :n_pos]", "  a_pos = jax.nn.softmax(logits[:, :n_pos], axis=-1)", 'tests/conservative_test.py'),
 ('companion psi without (tau + r)', 'drift_jax/fields/conservative.py', "                      jnp.log(tau) + jnp.log(tau + r) - r / tau)", "                      jnp.log(tau) + jnp.log(tau) - r / tau)", 'tests/conservative_test.py'),
 ('mmd negatives by positive mass', 'drift_jax/fields/conservative.py', "  return _sides(kc[:, :n_pos] / mass_pos, kc[:, n_pos:] / mass_neg,", "  return _sides(kc[:, :n_pos] / mass_pos, kc[:, n_pos:] / mass_pos,", 'tests/conservative_test.py'),
 ('sinkhorn one-sided (no column update)', 'drift_jax/fields/sinkhorn_field.py', "    return f_new, column_update(f_new), it + 1, change", "    return f_new, g, it + 1, change", 'tests/sinkhorn_test.py'),
 ('sinkhorn marginals not per side', 'drift_jax/fields/sinkhorn_field.py', "      log_w[n_pos:] - jax.nn.logsumexp(log_w[n_pos:])])", "      log_w[n_pos:] - jax.nn.logsumexp(log_w)])", 'tests/sinkhorn_test.py'),
 ('annealing the wrong way', 'drift_jax/methods/drifting.py', "    return jnp.maximum(jnp.exp(-rate * jnp.asarray(step, jnp.float32)),", "    return jnp.maximum(jnp.exp(rate * jnp.asarray(step, jnp.float32)),", 'tests/schedule_test.py'),
]


def main(argv) -> int:
  cli.check_no_arguments(argv)
  survived = 0
  with tempfile.TemporaryDirectory() as tmp:
    for sub in ('drift_jax', 'tests', 'pyproject.toml'):
      src = ROOT / sub
      if src.is_dir():
        shutil.copytree(src, pathlib.Path(tmp) / sub)
      else:
        shutil.copy(src, tmp)
    for name, path, old, new, tests in MUTS:
      file = pathlib.Path(tmp) / path
      text = file.read_text()
      if text.count(old) != 1:
        raise RuntimeError(f'mutation {name!r} no longer applies to {path}')
      file.write_text(text.replace(old, new))
      result = subprocess.run(
          [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider',
           *tests.split()], cwd=tmp, capture_output=True, text=True)
      file.write_text(text)
      caught = result.returncode != 0
      survived += not caught
      print(f'{name:32s} {"CAUGHT" if caught else "SURVIVED"}', flush=True)
  return int(survived > 0)


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
