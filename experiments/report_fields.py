r"""Field-level claims of the reproduction report (no training).

  python -m experiments.report_fields [--quick] [--out docs/figures]

Sections (each prints a markdown table and saves a figure in --out):
  gaussian   Gaussian `nw` field vs tau^2 (grad log p_tau - grad log q_tau):
             exact on the empirical sets (float64), and against the
             population field of two Gaussian mixtures as N grows.
  laplace    Laplace field = score part + residual (scores.py, after Lai
             et al. 2026 and Balasubramanian arXiv 2605.22795):
             residual ratio |residual| / |V| and cosine(V, score part) vs
             dimension d and temperature, raw and with the authors' distance
             normalisation (logits -dist / (S tau), S the mean distance).
  algebra    row = c(x) nw; bidirectional vs nw (cosine, norm ratio).
  bridge     DMD's direction with empirical (KDE) denoisers at the clean x,
             one sigma and no L1 normalisation = Gaussian nw drifting; then
             DMD's ingredients one at a time (noised points, the Karras
             sigma schedule, L1 normalisation, population denoisers), each
             as its cosine to the exact population score difference.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags

from drift_jax import fields
from drift_jax.evaluators import sample_metrics as metrics  # noqa: E402
from drift_jax.fields import kernels  # noqa: E402
from drift_jax.theory import distributions
from drift_jax.theory import losses  # noqa: E402
from drift_jax.theory import noise  # noqa: E402
from drift_jax.theory import scores  # noqa: E402
from drift_jax.train import reporting  # noqa: E402
from experiments import cli

DIMS = (2, 8, 32, 128, 512, 2048)
RAW_TAUS = (0.5, 1.0, 2.0, 4.0)
NORMALIZED_TAUS = (0.02, 0.05, 0.2)


def _ring(dim, shift):
  """A 4-component isotropic mixture in `dim` dims (means on a square in
  the first two coordinates, moved by `shift` along the first axis)."""
  means = np.zeros((4, dim))
  means[:, :2] = [[1, 1], [1, -1], [-1, 1], [-1, -1]]
  means[:, 0] += shift
  return distributions.GaussianMixture.isotropic(jnp.asarray(means), 0.5)


# -------------------------------------------------------------- gaussian


def gaussian_section(quick, out):
  """Empirical identity (exact) and the population field vs N."""
  from experiments import identities
  with jax.enable_x64(True):
    exact = identities.gaussian_identity()
  print('\n## Gaussian kernel: nw field = tau^2 score difference\n')
  print(f'- empirical sets, d = 2, 5, 64 (float64): max relative error '
        f'{exact:.1e}')
  sizes = (100, 300, 1000, 3000) if quick else (100, 300, 1000, 3000,
                                                10_000, 30_000)
  tau, dim = 0.5, 2
  p, q = _ring(dim, 0.0), _ring(dim, 0.4)
  x = q.sample(jax.random.key(7), 500)
  # Population: p_tau = p * N(0, tau^2 I) is again a mixture (closed form).
  population = tau**2 * (p.score(x, sigma=tau) - q.score(x, sigma=tau))
  print('\n| N = M samples | relative error to the population field | '
        'cosine |\n|---|---|---|')
  errors = []
  for n in sizes:
    reps = []
    for rep in range(3):
      key = jax.random.fold_in(jax.random.key(n), rep)
      pos = p.sample(jax.random.fold_in(key, 0), n)
      neg = q.sample(jax.random.fold_in(key, 1), n)
      v = fields.drifting_field(x, pos, neg, kernel='gaussian',
                                temperature=tau, normalization='nw',
                                mask_self=False)
      reps.append(metrics.field_agreement(v, population))
    err = np.mean([r['relative_error'] for r in reps])
    cos = np.mean([r['cosine'] for r in reps])
    errors.append(err)
    print(f'| {n} | {err:.4f} | {cos:.4f} |')
  slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
  print(f'\nlog-log slope of the error vs N: {slope:.2f} (Monte Carlo: '
        '-0.5)')
  plt = reporting.pyplot()
  fig, ax = plt.subplots(figsize=(4.5, 3.5))
  ax.loglog(sizes, errors, 'o-', label='nw Gaussian field')
  ax.loglog(sizes, errors[0] * (np.array(sizes) / sizes[0])**-0.5, 'k--',
            label='N^-1/2')
  ax.set_xlabel('N = M samples per distribution')
  ax.set_ylabel('relative error to population field')
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'gaussian_population.png'), dpi=110)
  plt.close(fig)


# --------------------------------------------------------------- laplace


def laplace_point(dim, n, tau, normalized, key):
  """(residual ratio, cosine(V, score part)) for p = N(0, I), q = N(mu, I),
  |mu| = 1, queries = the q samples (self-masked), in float32."""
  k_p, k_q = jax.random.split(key)
  mu = jnp.zeros((dim,)).at[0].set(1.0)
  pos = jax.random.normal(k_p, (n, dim))
  neg = jax.random.normal(k_q, (n, dim)) + mu
  if normalized:  # the authors' logits -dist / (S tau): raw tau = S tau
    dist = kernels.pairwise_distances(neg[:500], jnp.concatenate([pos[:500],
                                                                  neg[:500]]))
    tau = float(jnp.mean(dist)) * tau
  score_part, residual = scores.laplace_decomposition(neg, pos, neg, tau,
                                                      mask_self=True)
  v = score_part + residual
  ratio = float(jnp.linalg.norm(residual) / jnp.linalg.norm(v))
  cosine = metrics.field_agreement(v, score_part)['cosine']
  return ratio, cosine


def laplace_section(quick, out):
  dims = DIMS[:4] if quick else DIMS
  n = 500 if quick else 2000
  print('\n## Laplace kernel: residual vs dimension and temperature\n')
  print(f'p = N(0, I), q = N(e1, I), N = M = {n}, float32, mean of 3 '
        'draws. ratio = |residual| / |V| (Frobenius over the queries), '
        'cos = cosine(V, score part).\n')
  results = {}
  for normalized, taus in ((False, RAW_TAUS), (True, NORMALIZED_TAUS)):
    label = 'normalised tau' if normalized else 'raw tau'
    print('| d | ' + ' | '.join(f'{label} {t}: ratio / cos' for t in taus)
          + ' |\n|' + '---|' * (len(taus) + 1))
    for dim in dims:
      row = []
      for tau in taus:
        draws = [laplace_point(dim, n, tau, normalized,
                               jax.random.fold_in(jax.random.key(dim), r))
                 for r in range(3)]
        ratio, cosine = np.mean(draws, axis=0)
        results[(normalized, tau, dim)] = (ratio, cosine)
        row.append(f'{ratio:.3f} / {cosine:.3f}')
      print(f'| {dim} | ' + ' | '.join(row) + ' |')
    print()
  plt = reporting.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
  for ax, (normalized, taus) in zip(axes, ((False, RAW_TAUS),
                                           (True, NORMALIZED_TAUS)),
                                    strict=True):
    for tau in taus:
      ax.loglog(dims, [results[(normalized, tau, d)][0] for d in dims],
                'o-', label=f'tau = {tau}')
    ax.set_xlabel('dimension d')
    ax.set_ylabel('|residual| / |V|')
    ax.set_title('authors-normalised distances' if normalized
                 else 'raw distances', fontsize=9)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'laplace_residual.png'), dpi=110)
  plt.close(fig)
  return results


# ---------------------------------------------------------------- algebra


def algebra_section(quick, out):
  del quick, out
  print('\n## Algorithm 2 algebra\n')
  rng = np.random.default_rng(0)
  print('| setting | max rel. err of row vs c(x) nw (float64) | '
        'cos(bidirectional, nw) | |bidirectional| / |nw| |\n|---|---|---|---|')
  with jax.enable_x64(True):
    for dim, tau in ((2, 0.05), (2, 0.3), (32, 2.0), (32, 8.0)):
      x = jnp.asarray(rng.normal(size=(400, dim)))
      pos = jnp.asarray(rng.normal(size=(500, dim)) + 0.5)
      common = dict(kernel='laplace', temperature=tau, mask_self=True)
      nw = fields.drifting_field(x, pos, x, normalization='nw', **common)
      row = fields.drifting_field(x, pos, x, normalization='row', **common)
      logk_p = kernels.log_kernel_matrix(x, pos, kernel='laplace',
                                         temperature=tau)
      logk_q = kernels.log_kernel_matrix(x, x, kernel='laplace',
                                         temperature=tau)
      logk_q = jnp.where(jnp.eye(x.shape[0], dtype=bool), -jnp.inf, logk_q)
      big_p = jnp.exp(jax.nn.logsumexp(logk_p, axis=1))
      big_q = jnp.exp(jax.nn.logsumexp(logk_q, axis=1))
      c = big_p * big_q / (big_p + big_q)**2
      err = float(jnp.max(jnp.abs(row - c[:, None] * nw))
                  / jnp.max(jnp.abs(row)))
      bi = fields.drifting_field(x, pos, x, normalization='bidirectional',
                                 **common)
      agree = metrics.field_agreement(bi, nw)
      print(f'| d = {dim}, tau = {tau} | {err:.1e} | {agree["cosine"]:.3f} | '
            f'{float(jnp.linalg.norm(bi) / jnp.linalg.norm(nw)):.3f} |')


# ----------------------------------------------------------------- bridge


def bridge_stages(n, sigma, key):
  """{stage: direction [n, D]} on the 8-Gaussian ring (p) against a wider,
  smaller ring (q, a stand-in for an imperfect generator), and the exact
  reference sigma^2 (grad log p_sigma - grad log q_sigma)(x), x ~ q."""
  p = distributions.eight_gaussians()
  q = distributions.GaussianMixture.isotropic(p.means * 0.8, 0.2)
  k_x, k_pos, k_eps, k_sig = jax.random.split(key, 4)
  x = q.sample(k_x, n)  # the generated batch: queries and negatives
  pos = p.sample(k_pos, n)
  eps = jax.random.normal(k_eps, x.shape)
  grid = noise.karras_sigmas(1000, 0.002, 5.0)  # configs' sigma_max = 5
  schedule = noise.sample_grid_sigmas(k_sig, n, grid, 0.02, 0.98)
  kde_real = lambda xt, s: scores.kde_denoiser(xt, pos, s)
  kde_fake = lambda xt, s: scores.kde_denoiser(xt, x, s)
  kde_fake_loo = lambda xt, s: scores.kde_denoiser(xt, x, s,
                                                   exclude_self=True)
  exact = lambda mix: (lambda xt, s: mix.denoiser(xt, s))
  stages = {
      'Gaussian nw drifting (tau = sigma)': fields.drifting_field(
          x, pos, x, kernel='gaussian', temperature=sigma,
          normalization='nw', mask_self=True),
      'kde denoisers, clean x, one sigma, no L1': losses.dmd_direction(
          x, kde_real, kde_fake_loo, sigma, normalize=False),
      '+ noised x_t = x + sigma eps': losses.dmd_direction(
          x, kde_real, kde_fake, sigma, eps, normalize=False),
      '+ Karras sigma schedule (indices 20-980)': losses.dmd_direction(
          x, kde_real, kde_fake, schedule, eps, normalize=False),
      '+ L1 normalisation (full DMD direction)': losses.dmd_direction(
          x, kde_real, kde_fake, schedule, eps, normalize=True),
      'population denoisers (perfectly learned), full DMD':
          losses.dmd_direction(x, exact(p), exact(q), schedule, eps,
                               normalize=True),
  }
  reference = sigma**2 * (p.score(x, sigma=sigma) - q.score(x, sigma=sigma))
  return stages, reference


def bridge_section(quick, out):
  del out
  n, sigma = (500 if quick else 2000), 0.3
  draws = [bridge_stages(n, sigma, jax.random.key(r)) for r in range(3)]
  print('\n## The bridge: DMD ingredients one at a time\n')
  print(f'p = 8-Gaussian ring (std 0.08), q = ring x 0.8 with std 0.2; '
        f'N = M = {n}; reference: sigma^2 (grad log p_sigma - grad log '
        f'q_sigma)(x) at the clean x, sigma = {sigma}; mean of 3 draws.\n')
  first, _ = draws[0]
  identity = float(jnp.max(jnp.abs(
      first['kde denoisers, clean x, one sigma, no L1']
      - first['Gaussian nw drifting (tau = sigma)']))
      / jnp.max(jnp.abs(first['Gaussian nw drifting (tau = sigma)'])))
  print(f'kde-DMD at clean x = Gaussian nw drifting: max relative '
        f'difference {identity:.1e} (float32)\n')
  print('| direction | cosine to reference | mean pointwise cosine |\n'
        '|---|---|---|')
  for name in first:
    agree = [metrics.field_agreement(stages[name], ref)
             for stages, ref in draws]
    print(f"| {name} | {np.mean([a['cosine'] for a in agree]):.3f} | "
          f"{np.mean([a['mean_pointwise_cosine'] for a in agree]):.3f} |")


SECTIONS = {'gaussian': gaussian_section, 'laplace': laplace_section,
            'algebra': algebra_section, 'bridge': bridge_section}


FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script: importing this module (tests,
  notebooks, other entry points) adds no flags."""
  flags.DEFINE_bool('quick', False, 'Smaller sizes and dimensions (a smoke '
                    'run).')
  flags.DEFINE_string('out', 'docs/figures', 'Directory of the figures.')
  flags.DEFINE_list('sections', [], f'Comma-separated subset of '
                    f'{sorted(SECTIONS)} (default: all).')


def main(argv):
  cli.check_no_arguments(argv)
  cli.check_subset('sections', FLAGS.sections, SECTIONS)
  os.makedirs(FLAGS.out, exist_ok=True)
  print(f'# report_fields: jax {jax.__version__}, '
        f'{jax.devices()[0].device_kind}')
  for name in FLAGS.sections or SECTIONS:
    SECTIONS[name](FLAGS.quick, FLAGS.out)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
