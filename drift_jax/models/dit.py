"""Diffusion-Transformer generator and denoiser (Flax NNX), after the
LightningDiT design the drifting release uses (Deng et al. 2026, §4 and
App. A; Peebles and Xie 2023 for DiT and adaLN-Zero).

The trunk, shared by both roles:
- patchify = reshape to [N, (H/p)(W/p), p p C] + Linear; a learnable
  position embedding initialised to the 2-D sin-cos table;
- `context_tokens` in-context tokens, Linear(conditioning) plus a learnable
  table, prepended to the patch tokens (dropped again at the output);
- blocks of adaLN-Zero modulation (SiLU -> Linear to 6 D, zero-initialised,
  computed in float32) around RMSNorm -> attention (qkv with bias, RMS
  QK-norm per head, 1-D RoPE over all tokens, base 1e4, softmax in float32)
  -> gated residual, and RMSNorm -> SwiGLU of hidden width round32(2/3 4D)
  -> gated residual; each block optionally rematerialised;
- a final adaLN -> RMSNorm -> Linear to p p C, zero-initialised, so the
  trunk outputs exactly zero at initialisation.

The generator's conditioning vector (Deng et al. 2026, App. A.7) is a class
embedding (row `num_classes` = unconditional) + `style_tokens` style
embeddings, each a `style_codebook`-entry table indexed by its own random
code, + 0.02 RMSNorm(MLP(sinusoidal(alpha))), alpha the CFG scale. Its
noise is one Gaussian vector [N, H W C + style_tokens]: the image-shaped
part enters the patchify, and each of the last `style_tokens` coordinates
picks its code as floor(Phi(z) K) (Phi the normal CDF), uniform over the K
entries, so the runner's N(0, I) noise carries the random style labels.

The denoiser (EDM-preconditioned, Karras et al. 2022 Table 1) conditions on
c_noise(sigma) instead of alpha, with no style embeddings.

Both take and return flat [N, H W C] samples like every network here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from drift_jax.models import edm
from drift_jax.models.network import Network
from drift_jax.theory import noise as noise_lib


class DiTSize(NamedTuple):
  """Width, depth, heads and patch of a named DiT size."""
  hidden: int
  depth: int
  heads: int
  patch: int


# Named sizes (DiT's S/B/L, Peebles and Xie 2023 Table 1) and CPU-sized
# ones for tests and smoke runs.
SIZES: dict[str, DiTSize] = {
    'tiny': DiTSize(32, 2, 2, 4),
    'tiny/2': DiTSize(32, 2, 2, 2),
    'mini': DiTSize(128, 4, 4, 4),
    'S/4': DiTSize(384, 12, 6, 4),
    'S/2': DiTSize(384, 12, 6, 2),
    'B/4': DiTSize(768, 12, 12, 4),
    'B/2': DiTSize(768, 12, 12, 2),
    'L/2': DiTSize(1024, 24, 16, 2),
}
FREQUENCY_DIM = 256  # sinusoidal embedding width of alpha and sigma (DiT)


def swiglu_hidden(hidden: int, mlp_ratio: float = 4.0,
                  multiple: int = 32) -> int:
  """round32(2/3 mlp_ratio D), rounded up as LLaMA's SwiGLU does."""
  width = int(2 * int(hidden * mlp_ratio) / 3)
  return multiple * ((width + multiple - 1) // multiple)


def sincos_2d(dim: int, grid_h: int, grid_w: int) -> np.ndarray:
  """[grid_h grid_w, dim] 2-D sin-cos position table (MAE, He et al. 2022):
  half the channels encode the row, half the column."""
  if dim % 4:
    raise ValueError(f'DiT width must be divisible by 4, got {dim}.')

  def one_axis(positions, width):
    omega = 1.0 / 10000 ** (np.arange(width // 2, dtype=np.float64)
                            / (width // 2))
    angles = np.outer(positions, omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

  rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w),
                           indexing='ij')
  return np.concatenate([one_axis(rows.ravel(), dim // 2),
                         one_axis(cols.ravel(), dim // 2)],
                        axis=1).astype(np.float32)


def sinusoidal(t, dim: int = FREQUENCY_DIM, max_period: float = 1e4):
  """[N] scalars -> [N, dim] cos/sin features (DiT's timestep embedding)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half) / half)
  angles = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.cos(angles), jnp.sin(angles)], axis=-1)


def rope(x, base: float = 1e4):
  """1-D rotary position embedding (Su et al. 2021) of x [N, T, heads, d]
  over its T positions, in float32."""
  d = x.shape[-1]
  freqs = 1.0 / base ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d)
  angles = jnp.arange(x.shape[1], dtype=jnp.float32)[:, None] * freqs
  cos, sin = jnp.cos(angles)[None, :, None], jnp.sin(angles)[None, :, None]
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos],
                         axis=-1).astype(x.dtype)


def _rms_norm(x, scale=None, eps: float = 1e-6):
  """RMSNorm with the variance in float32."""
  x32 = x.astype(jnp.float32)
  y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + eps)
  if scale is not None:
    y = y * scale
  return y.astype(x.dtype)


class RMSNorm(nnx.Module):
  """RMSNorm over the last axis with a learnable scale (variance in f32)."""

  def __init__(self, dim: int):
    self.scale = nnx.Param(jnp.ones((dim,)))

  def __call__(self, x):
    return _rms_norm(x, self.scale[...])


def _xavier_linear(a, b, rngs, *, zero=False, dtype=None):
  init = (nnx.initializers.zeros if zero
          else nnx.initializers.xavier_uniform())
  return nnx.Linear(a, b, kernel_init=init, rngs=rngs, dtype=dtype)


def _modulate(x, shift, scale):
  return x * (1 + scale[:, None]) + shift[:, None]


# `dit_attention`: 'einsum' writes the attention out (float32 logits and
# softmax); 'xla' and 'cudnn' call `jax.nn.dot_product_attention` with that
# implementation (cuDNN's fused kernel on NVIDIA GPUs only), which also
# takes float32 logits and softmax.
ATTENTION = ('einsum', 'xla', 'cudnn')
# `dit_remat_policy`: what a rematerialised block keeps for its backward
# pass: nothing (recompute the whole block), or the outputs of its matmuls
# without batch dimensions (the projections; the attention's batched
# einsums are recomputed), `jax.checkpoint_policies`.
REMAT_POLICIES = {
    'nothing': None,
    'dots': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Attention(nnx.Module):
  """Multi-head self-attention: qkv with bias, RMS QK-norm per head, RoPE
  over all tokens, softmax in float32."""

  def __init__(self, dim: int, heads: int, rngs: nnx.Rngs, dtype=None,
               implementation: str = 'einsum'):
    if dim % heads:
      raise ValueError(f'DiT width {dim} is not divisible by {heads} heads.')
    self.implementation = implementation
    self.heads = heads
    head_dim = dim // heads
    self.qkv = _xavier_linear(dim, 3 * dim, rngs, dtype=dtype)
    self.q_norm = RMSNorm(head_dim)
    self.k_norm = RMSNorm(head_dim)
    self.proj = _xavier_linear(dim, dim, rngs, dtype=dtype)

  def __call__(self, x):
    n, t, dim = x.shape
    q, k, v = jnp.split(self.qkv(x).reshape(n, t, 3, self.heads, -1), 3,
                        axis=2)
    q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]  # [N, T, heads, d]
    q, k = rope(self.q_norm(q)), rope(self.k_norm(k))
    if self.implementation != 'einsum':
      out = jax.nn.dot_product_attention(
          q.astype(v.dtype), k.astype(v.dtype), v,
          implementation=self.implementation)
      return self.proj(out.reshape(n, t, dim))
    logits = jnp.einsum('nqhd,nkhd->nhqk', q.astype(jnp.float32),
                        k.astype(jnp.float32)) / math.sqrt(q.shape[-1])
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    out = jnp.einsum('nhqk,nkhd->nqhd', weights, v).reshape(n, t, dim)
    return self.proj(out)


class SwiGLU(nnx.Module):
  """w3(silu(w1 x) * w2 x) (Shazeer 2020), hidden width round32(8D/3)."""

  def __init__(self, dim: int, rngs: nnx.Rngs, dtype=None):
    hidden = swiglu_hidden(dim)
    self.w12 = _xavier_linear(dim, 2 * hidden, rngs, dtype=dtype)
    self.w3 = _xavier_linear(hidden, dim, rngs, dtype=dtype)

  def __call__(self, x):
    a, b = jnp.split(self.w12(x), 2, axis=-1)
    return self.w3(nnx.silu(a) * b)


class DiTBlock(nnx.Module):
  """adaLN-Zero block: x += g1 attn(mod(norm(x))); x += g2 mlp(mod(norm(x)))
  with (shift, scale, gate) x 2 from the conditioning, zero at init."""

  def __init__(self, dim: int, heads: int, rngs: nnx.Rngs, dtype=None,
               attention: str = 'einsum'):
    self.norm1 = RMSNorm(dim)
    self.attn = Attention(dim, heads, rngs, dtype, attention)
    self.norm2 = RMSNorm(dim)
    self.mlp = SwiGLU(dim, rngs, dtype)
    # float32 whatever the compute dtype: the modulation scales every
    # activation of the block.
    self.modulation = _xavier_linear(dim, 6 * dim, rngs, zero=True,
                                     dtype=jnp.float32)

  def __call__(self, x, cond):
    mod = self.modulation(nnx.silu(cond.astype(jnp.float32)))
    s1, c1, g1, s2, c2, g2 = jnp.split(mod, 6, axis=-1)
    h = _modulate(self.norm1(x).astype(jnp.float32), s1, c1).astype(x.dtype)
    x = x + (g1[:, None] * self.attn(h)).astype(x.dtype)
    h = _modulate(self.norm2(x).astype(jnp.float32), s2, c2).astype(x.dtype)
    return x + (g2[:, None] * self.mlp(h)).astype(x.dtype)


class FinalLayer(nnx.Module):
  """adaLN -> RMSNorm -> modulate -> Linear(D -> p p C), all zero-init."""

  def __init__(self, dim: int, out: int, rngs: nnx.Rngs):
    self.norm = RMSNorm(dim)
    self.modulation = _xavier_linear(dim, 2 * dim, rngs, zero=True,
                                     dtype=jnp.float32)
    self.linear = _xavier_linear(dim, out, rngs, zero=True,
                                 dtype=jnp.float32)

  def __call__(self, x, cond):
    shift, scale = jnp.split(
        self.modulation(nnx.silu(cond.astype(jnp.float32))), 2, axis=-1)
    return self.linear(_modulate(self.norm(x).astype(jnp.float32), shift,
                                 scale))


def check_image_shape(image_shape, patch: int) -> tuple[int, int, int]:
  """(H, W, C) with H and W multiples of the patch, or ValueError."""
  if len(image_shape) != 3 or min(image_shape) < 1:
    raise ValueError(f'`image_shape` must be (H, W, C), got {image_shape}.')
  h, w, c = image_shape
  if h % patch or w % patch:
    raise ValueError(f'DiT patch {patch} does not tile images {h}x{w}; '
                     'pick a size whose patch divides H and W (or pad the '
                     'images, e.g. data.image_size=32).')
  return int(h), int(w), int(c)


class DiTTrunk(nnx.Module):
  """Patch tokens + context tokens -> blocks -> patches, conditioned on a
  vector [N, D]. Input and output images [N, H, W, C]."""

  def __init__(self, image_shape, size: DiTSize, *, context_tokens: int = 16,
               remat: bool = False, dtype=None, attention: str = 'einsum',
               remat_policy: str = 'nothing', rngs: nnx.Rngs):
    h, w, c = check_image_shape(image_shape, size.patch)
    p, dim = size.patch, size.hidden
    self.image_shape, self.size = (h, w, c), size
    self.grid = (h // p, w // p)
    self.remat = remat
    self.remat_policy = remat_policy
    self.dtype = dtype
    self.patch_embed = _xavier_linear(p * p * c, dim, rngs, dtype=dtype)
    self.pos_embed = nnx.Param(jnp.asarray(sincos_2d(dim, *self.grid))[None])
    self.context = (_xavier_linear(dim, dim, rngs, dtype=dtype)
                    if context_tokens else None)
    self.context_table = (nnx.Param(nnx.initializers.normal(0.02)(
        rngs.params(), (1, context_tokens, dim))) if context_tokens else None)
    self.context_tokens = context_tokens
    self.blocks = nnx.List([DiTBlock(dim, size.heads, rngs, dtype,
                                     attention)
                            for _ in range(size.depth)])
    self.final = FinalLayer(dim, p * p * c, rngs)

  def patchify(self, x):
    n, (gh, gw), p = x.shape[0], self.grid, self.size.patch
    x = x.reshape(n, gh, p, gw, p, -1).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, gh * gw, -1)

  def unpatchify(self, tokens):
    n, (gh, gw), p = tokens.shape[0], self.grid, self.size.patch
    x = tokens.reshape(n, gh, gw, p, p, -1).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, gh * p, gw * p, -1)

  def __call__(self, images, cond, states=None):
    """F(images) [N, H, W, C]; with a list `states`, appends the patch
    tokens after every second block (and the last) as [N, H/p, W/p, D]."""
    x = self.patch_embed(self.patchify(images)) + self.pos_embed[...]
    if self.context is not None:
      ctx = self.context(cond)[:, None] + self.context_table[...]
      x = jnp.concatenate([ctx.astype(x.dtype), x], axis=1)
    if self.dtype is not None:
      x = x.astype(self.dtype)
    for i, block in enumerate(self.blocks):
      if self.remat:  # recompute the block's activations in the backward
        x = nnx.remat(lambda b, x, c: b(x, c), policy=REMAT_POLICIES[
            self.remat_policy])(block, x, cond)
      else:
        x = block(x, cond)
      if states is not None and (i % 2 == 1 or i == len(self.blocks) - 1):
        tokens = x[:, self.context_tokens:].astype(jnp.float32)
        states.append(tokens.reshape(x.shape[0], *self.grid, -1))
    out = self.final(x[:, self.context_tokens:], cond)
    return self.unpatchify(out.astype(jnp.float32))


class _ScalarEmbedding(nnx.Module):
  """sinusoidal(s) -> Linear -> SiLU -> Linear (DiT's TimestepEmbedder)."""

  def __init__(self, dim: int, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(FREQUENCY_DIM, dim,
                          kernel_init=nnx.initializers.normal(0.02),
                          rngs=rngs)
    self.fc2 = nnx.Linear(dim, dim, kernel_init=nnx.initializers.normal(0.02),
                          rngs=rngs)

  def __call__(self, s):
    return self.fc2(nnx.silu(self.fc1(sinusoidal(s))))


def _class_embedding(num_classes, dim, rngs):
  """Rows 0..num_classes-1 the classes, row num_classes 'no class'."""
  return nnx.Embed(num_classes + 1, dim,
                   embedding_init=nnx.initializers.normal(0.02), rngs=rngs)


def _labels_or_null(labels, n, num_classes):
  if labels is None:
    return jnp.full((n,), num_classes, jnp.int32)
  return jnp.asarray(labels, jnp.int32)


class DiTGenerator(nnx.Module):
  """z [N, H W C + style_tokens] ~ N(0, I) -> flat images [N, H W C];
  `gen(z, labels=None, alpha=None)`."""

  def __init__(self, image_shape, size: DiTSize, *, num_classes: int = 0,
               context_tokens: int = 16, style_tokens: int = 32,
               style_codebook: int = 64, remat: bool = False, dtype=None,
               attention: str = 'einsum', remat_policy: str = 'nothing',
               rngs: nnx.Rngs):
    self.trunk = DiTTrunk(image_shape, size, context_tokens=context_tokens,
                          remat=remat, dtype=dtype, attention=attention,
                          remat_policy=remat_policy, rngs=rngs)
    dim = size.hidden
    self.image_dim = math.prod(self.trunk.image_shape)
    self.num_classes = num_classes
    self.style_tokens, self.style_codebook = style_tokens, style_codebook
    self.noise_dim = self.image_dim + style_tokens
    self.classes = _class_embedding(num_classes, dim, rngs)
    self.styles = (nnx.Param(nnx.initializers.normal(0.02)(
        rngs.params(), (style_tokens, style_codebook, dim)))
                   if style_tokens else None)
    self.alpha_embed = _ScalarEmbedding(dim, rngs)
    self.alpha_norm = RMSNorm(dim)

  def style_codes(self, z_style):
    """The codes floor(Phi(z) K) in 0..K-1 of style noise [N, style_tokens]
    (uniform when z ~ N(0, 1))."""
    u = jax.scipy.stats.norm.cdf(z_style)
    return jnp.clip(jnp.floor(u * self.style_codebook).astype(jnp.int32), 0,
                    self.style_codebook - 1)

  def conditioning(self, z_style, labels, alpha):
    n = z_style.shape[0]
    cond = self.classes(_labels_or_null(labels, n, self.num_classes))
    if self.styles is not None:
      codes = self.style_codes(z_style)  # [N, S]
      picked = jnp.take_along_axis(
          self.styles[...][None], codes[:, :, None, None], axis=2)
      cond = cond + picked[:, :, 0].sum(axis=1)
    return cond + 0.02 * self.alpha_norm(self.alpha_embed(alpha))

  def __call__(self, z, labels=None, alpha=None):
    if z.ndim != 2 or z.shape[-1] != self.noise_dim:
      raise ValueError(f'Noise `z` must be [N, {self.noise_dim}] (H W C = '
                       f'{self.image_dim} image coordinates + '
                       f'{self.style_tokens} style codes), got {z.shape}.')
    if labels is not None and not self.num_classes:
      raise ValueError('This DiT generator is unconditional (num_classes=0)'
                       ' but got labels.')
    n = z.shape[0]
    alpha = (jnp.ones((n,)) if alpha is None
             else jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), (n,)))
    images = z[:, :self.image_dim].reshape((n,) + self.trunk.image_shape)
    cond = self.conditioning(z[:, self.image_dim:], labels, alpha)
    return self.trunk(images, cond).reshape(n, -1)

  def sample_noise(self, key, n: int):
    return jax.random.normal(key, (n, self.noise_dim))


class DiTDenoiser(edm.ImageDenoiser):
  """EDM-preconditioned D(x, sigma, labels) with a DiT trunk F conditioned
  on class embedding + MLP(sinusoidal(c_noise))."""

  def __init__(self, image_shape, size: DiTSize, *, num_classes: int = 0,
               context_tokens: int = 16, remat: bool = False, dtype=None,
               attention: str = 'einsum', remat_policy: str = 'nothing',
               sigma_data: float = noise_lib.SIGMA_DATA, rngs: nnx.Rngs):
    self.trunk = DiTTrunk(image_shape, size, context_tokens=context_tokens,
                          remat=remat, dtype=dtype, attention=attention,
                          remat_policy=remat_policy, rngs=rngs)
    self.image_shape = self.trunk.image_shape
    self.sigma_data = sigma_data
    self.num_classes = num_classes
    self.classes = _class_embedding(num_classes, size.hidden, rngs)
    self.sigma_embed = _ScalarEmbedding(size.hidden, rngs)

  def backbone(self, x_in, c_noise, labels):
    n = x_in.shape[0]
    f = self.trunk(x_in.reshape((n,) + self.image_shape),
                   self._cond(c_noise, labels, n))
    return f.reshape(n, -1)

  def _cond(self, c_noise, labels, n):
    if labels is not None and not self.num_classes:
      raise ValueError('This DiT denoiser is unconditional (num_classes=0) '
                       'but got labels.')
    return (self.classes(_labels_or_null(labels, n, self.num_classes))
            + self.sigma_embed(c_noise))

  def backbone_states(self, x_in, c_noise, labels):
    """The token grids after every second block (and the last)."""
    n, states = x_in.shape[0], []
    self.trunk(x_in.reshape((n,) + self.image_shape),
               self._cond(c_noise, labels, n), states)
    return states


def size_of(name: str) -> DiTSize:
  if name not in SIZES:
    raise ValueError(f'Unknown DiT size {name!r}; known: {tuple(SIZES)}.')
  return SIZES[name]


DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}


def _validate(section) -> None:
  if section.dit_size not in SIZES:
    raise ValueError(f'`dit_size` must be one of {tuple(SIZES)}, got '
                     f'{section.dit_size!r}.')
  if section.dit_dtype not in DTYPES:
    raise ValueError(f'`dit_dtype` must be one of {tuple(DTYPES)}, got '
                     f'{section.dit_dtype!r}.')
  attention = section.get('dit_attention', 'einsum')
  if attention not in ATTENTION:
    raise ValueError(f'`dit_attention` must be one of {ATTENTION}, got '
                     f'{attention!r}.')
  policy = section.get('dit_remat_policy', 'nothing')
  if policy not in REMAT_POLICIES:
    raise ValueError(f'`dit_remat_policy` must be one of '
                     f'{tuple(REMAT_POLICIES)}, got {policy!r}.')
  if attention == 'cudnn' and jax.default_backend() != 'gpu':
    raise ValueError("`dit_attention='cudnn'` needs an NVIDIA GPU; this "
                     f"backend is {jax.default_backend()!r} (use 'xla').")
  for key in ('dit_context_tokens', 'dit_style_tokens'):
    if section.get(key, 0) < 0:
      raise ValueError(f'`{key}` must be >= 0, got {section[key]}.')
  if section.get('dit_style_codebook', 1) < 1:
    raise ValueError(f'`dit_style_codebook` must be >= 1, got '
                     f'{section.dit_style_codebook}.')


def generator_noise_dim(image_shape, section) -> int:
  """The noise width the DiT generator takes: H W C + style tokens."""
  return math.prod(image_shape) + section.dit_style_tokens


def _trunk_options(section) -> dict:
  """The trunk's keyword arguments a `model.generator` / `model.denoiser`
  section sets (both roles' builders)."""
  return dict(context_tokens=section.dit_context_tokens,
              remat=section.dit_remat, dtype=DTYPES[section.dit_dtype],
              attention=section.get('dit_attention', 'einsum'),
              remat_policy=section.get('dit_remat_policy', 'nothing'))


def _build_generator(section, *, dim, image_shape, num_classes, rngs):
  _validate(section)
  need = generator_noise_dim(image_shape, section)
  if section.noise_dim != need:
    raise ValueError(
        f'`model.generator.noise_dim` must be H W C + dit_style_tokens = '
        f'{math.prod(image_shape)} + {section.dit_style_tokens} = {need} '
        f'for the DiT generator on images {tuple(image_shape)}, got '
        f'{section.noise_dim}.')
  del dim
  return DiTGenerator(image_shape, size_of(section.dit_size),
                      num_classes=num_classes,
                      style_tokens=section.dit_style_tokens,
                      style_codebook=section.dit_style_codebook,
                      rngs=rngs, **_trunk_options(section))


def _build_denoiser(section, *, dim, image_shape, num_classes, rngs,
                    sigma_data):
  _validate(section)
  del dim
  return DiTDenoiser(image_shape, size_of(section.dit_size),
                     num_classes=num_classes, sigma_data=sigma_data,
                     rngs=rngs, **_trunk_options(section))


_TRUNK = dict(dit_size='tiny', dit_context_tokens=16, dit_remat=False,
              dit_dtype='float32', dit_attention='einsum',
              dit_remat_policy='nothing')
GENERATOR = Network(_build_generator,
                    config=dict(_TRUNK, dit_style_tokens=32,
                                dit_style_codebook=64),
                    images=True, conditional=True, validate=_validate)
DENOISER = Network(_build_denoiser, config=_TRUNK, images=True,
                   conditional=True, validate=_validate)
