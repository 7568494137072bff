r"""Fashion-MNIST (Debian's `dataset-fashion-mnist` package; `apt-get install
-y dataset-fashion-mnist`, nothing downloaded): drifting on raw pixels or in
a trained encoder's features, with a conv or DiT generator, the diffusion
teacher and DMD, class-conditional or not.

python -m experiments.main --config configs/fashion_mnist.py --workdir runs/fmnist_pixel
python -m experiments.main --config configs/fashion_mnist.py:encoder=mae --workdir runs/fmnist_mae
python -m experiments.main --config configs/fashion_mnist.py:conditional,generator=dit --workdir runs/fmnist_dit_cfg
python -m experiments.main --config configs/fashion_mnist.py:encoder=teacher --workdir runs/fmnist_teacher_feat
python -m experiments.main --config configs/fashion_mnist.py:method=diffusion --workdir runs/fmnist_teacher
python -m experiments.main --config configs/fashion_mnist.py:method=dmd,denoiser=dit --workdir runs/fmnist_dmd
python -m experiments.main --config configs/fashion_mnist.py:method=dmd,generator=teacher --workdir runs/fmnist_dmd2

Arguments (after the colon, comma separated):
  method: drifting | diffusion | dmd (DMD: a teacher trained first into
    workdir/teacher, then the generator).
  encoder: raw (drifting on pixels) | mae (drifting in the multi-scale
    features of a masked-autoencoder ResNet trained first into
    workdir/encoder, `methods/mae.py`) | classifier (the same with a conv
    classifier as the encoder) | teacher (teacher-feature drifting: the
    hidden states of the diffusion teacher DMD would train, `denoiser`,
    trained first into workdir/encoder).
  generator: conv | dit (the DiT generator, `model.generator.dit_size`) |
    teacher (DMD only, as DMD2: the teacher's own network at sigma_max on
    image-shaped noise, initialised from the teacher; `dmd.generator`).
  denoiser: unet | dit (the diffusion teacher's and DMD's networks).
  conditional: class-conditional (drifting: CFG with alpha ~ U[1, 2],
    evaluated at alpha = 1; diffusion and DMD: a conditional teacher and
    generator, no guidance).
  size: 28 (native), or 32 (padded; the DiT's /2 patches tile either).
  runlocal: tiny sizes for tests.

The held-out set is drawn from the official 10,000-image test split; runs
train on the 60,000 training images. Every run evaluates with a classifier
trained into workdir/classifier (`eval.classifier='train'`), of another
architecture (three stages, `eval.classifier_channels`) than the classifier
encoder (two) and another seed.
"""


from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.methods import drifting
from drift_jax.models import dit

GENERATORS = ('conv', 'dit', 'teacher')
DENOISERS = ('unet', 'dit')
ENCODERS = ('raw', 'classifier', 'mae', 'teacher')


# The teacher DMD and teacher-feature drifting train first within their
# 10 minutes: 500 steps of 64 images. A teacher of 64-image steps scores
# 4.5 after 400 and 3.8 after 600 (feature FD of 500 Heun samples;
# `experiments.image_quality --variants diffusion --set
# train.batch_size=64 --set train.gen_batch_size=64 --set train.steps=600
# --set train.eval_every=200 --set eval.num_samples=500`); the former
# 120 steps of 200 images cost about as much and scored 11.
SHORT_TEACHER_STEPS = 500


def _short_teacher(c):
  """The short teacher's steps and batch, and its one evaluation on 200
  samples (its Heun sampler on 1,000 took about 100 s of the 10 minutes
  and only reports on the teacher)."""
  c.dmd.update(teacher_steps=SHORT_TEACHER_STEPS, teacher_batch_size=64,
               teacher_eval_samples=200)


# DMD's networks and sigma range at CPU size: `_dmd_defaults` and the
# images suite (`suites/images.py`) both train DMD with them.
DMD_CPU = {'model.denoiser.channels': (16, 32, 64), 'dmd.min_frac': 0.4}


def _dmd_defaults(c):
  """DMD's own default (`method=dmd` in the config argument), the one
  found to improve most within 10 minutes of the 2-core CPU
  (`experiments.image_quality --variants dmd --set ...` trials, README):
  - teacher and D_fake a U-Net of widths (16, 32, 64) (the (32, 64, 128)
    U-Net took 208 s for 500 teacher steps of 64 and 2.8 s a generator
    step); the teacher trains 800 steps of 64 images (1,000 took 162-197
    s, Heun FD 3.2-3.6 on 200 samples), the generator 300 steps of 64
    with 5 fake updates each (~1.3 s a step), evaluated once at its end:
    with 1,000 teacher steps and a midpoint evaluation the whole run took
    605 s;
  - the DMD direction's sigma from the grid's upper 60 % of indices
    (`dmd.min_frac=0.4`: sigma >= ~0.2) instead of DMD2's 2-98 %: with
    the short teacher, whose small-sigma denoising is barely trained,
    FD 7.0 against 9.4 after 100 steps;
  - constant learning rates, as DMD2 trains (its App. B; no warm-up in
    300 steps): under the cosine decay D_fake's rate fell to 0 with the
    generator's and stopped tracking it (feature FD after 300 steps 6.03;
    4.32 at constant rates with the same teacher). At cosine rates lr
    2e-3 or 5e-4, and 2 or 1 fake updates a step, did worse.
  DMD reached by override from another method's config keeps
  `defaults_by_method`'s shorter set-up; the images suite gives it
  `DMD_CPU` (and constant rates) itself."""
  c.update_from_flattened_dict(DMD_CPU)
  c.dmd.update(teacher_batch_size=64, teacher_eval_samples=200)
  c.train.gen_batch_size = 64
  c.optim.schedule = 'constant'
  # The lengths as `method=dmd`'s defaults (they replace the override
  # route's), so command-line keys still win over them.
  c.defaults_by_method.dmd = {
      'train': {'steps': 300, 'eval_every': 300, 'checkpoint_every': 150},
      'dmd': {'teacher_steps': 800}}


def get_config(arg=None):
  a = config_lib.parse_arg(arg, method='drifting', encoder='raw',
                           generator='conv', denoiser='unet',
                           conditional=False, size=28, runlocal=False)
  config_lib.check_choice('generator', a.generator, GENERATORS)
  if a.generator == 'teacher' and a.method != 'dmd':
    raise ValueError("Config argument generator='teacher' is DMD's (the "
                     f"teacher's network as the generator); got "
                     f'method={a.method!r}.')
  config_lib.check_choice('denoiser', a.denoiser, DENOISERS)
  config_lib.check_choice('encoder', a.encoder, ENCODERS)
  c = methods.base_config()
  c.method = a.method
  c.data.update(name='fashion_mnist', image_size=a.size,
                validation_fraction=0.05)
  shape = (a.size, a.size, 1)
  gen = c.model.generator
  gen.update(name='conv' if a.generator == 'teacher' else a.generator,
             channels=(128, 64, 32), dit_size='mini')
  c.model.denoiser.update(name=a.denoiser, channels=(32, 64, 128),
                          dit_size='mini')
  # Distances in 784 pixel (or feature) dimensions: the authors'
  # normalised recipe (App. A.6) keeps the temperatures meaningful.
  drifting.authors_field_recipe(c)
  # Lengths for at most 10 minutes each on the 2-core CPU, prerequisites
  # and evaluations included (`experiments.image_quality` measures them):
  # the U-Net teacher takes 1.55 s a step at 200 images and ~100 s to
  # evaluate (Heun sampling of 1,000 images), DMD's generator about 9 s a
  # step at 200 with its 5 fake updates (`_dmd_defaults` for its own);
  # feature-space drifting steps cost several pixel steps.
  # Drifting on pixels: 400 steps (600 took ~1.1 s a step, 670 s).
  c.train.update(steps=400, batch_size=200, gen_batch_size=200,
                 ema_decay=0.999, eval_every=300, checkpoint_every=300,
                 log_every=50)
  c.optim.update(lr=1e-3, schedule='cosine')
  if a.method == 'drifting':
    # The leaderboard's cross-task drifting config, as on the digits: a
    # default that generalises, not one tuned to this dataset.
    drifting.leaderboard_defaults(c)
  c.diffusion.sigma_max = 10.0  # pixels in [-1, 1]
  c.dmd.update(teacher='train', teacher_steps=600)
  # DMD by override from another method's config: `_short_teacher`'s
  # length, then 100 generator steps; `method=dmd` itself: `_dmd_defaults`.
  c.defaults_by_method.dmd = {
      'train': {'steps': 100, 'eval_every': 50, 'checkpoint_every': 50},
      'dmd': {'teacher_steps': SHORT_TEACHER_STEPS}}
  if a.method == 'dmd':
    _dmd_defaults(c)
  c.defaults_by_method.diffusion = {'train': {
      'steps': 300, 'eval_every': 300, 'checkpoint_every': 150}}
  c.eval.num_samples = 1000
  # The diffusion teacher's unrolled Heun sampler on 200 rows at a time:
  # all 1,000 at once took > 22 GB (2.1 GB peak in chunks).
  c.eval.sample_chunk = 200
  # KID (with its standard error) and per-class FD beside the feature FD,
  # all in the evaluation classifier's features (evaluators/kid.py).
  c.eval.evaluators = ('distances', 'classifier_features', 'kid')
  # The evaluation classifier has three stages, the classifier encoder
  # (encoder=classifier) two: no method trains in the network, or the
  # architecture, its samples are scored in.
  c.eval.classifier_channels = (32, 64, 128)
  if a.encoder != 'raw':
    # A 28x28 map has 784 locations, each a field over the batch: 49 at a
    # time keeps a step in a few GB (all at once took > 23 GB at batch 200).
    # The MAE's 784- and 196-vector sets are 71 % of its 76 GFLOPs of
    # fields per step (`features.field_costs`; 6.5 s a step on the 2-core
    # CPU): sets of at most 64 vectors keep the 7x7 and 4x4 maps' locations,
    # the coarser patch statistics, the global ones and the raw sample.
    c.features.update(encoder='train', encoder_kind=a.encoder,
                      location_chunk=49, max_locations=64)
    # The encoder trains first within the run's 10 minutes
    # (`experiments.image_quality` measures them). MAE: 100 + 200 steps
    # (at 200 + 100 the drift had flattened at 4.2x). Teacher features:
    # DMD's short teacher, then 120 drift steps on the sets of at most 4
    # vectors (global and coarse patch statistics, the raw sample): the
    # 7x7 maps' per-location sets made a step about twice as dear.
    c.mae.steps = 100
    steps = 120 if a.encoder == 'teacher' else 200
    c.train.update(steps=steps, eval_every=steps // 2,
                   checkpoint_every=steps // 2)
    if a.encoder == 'teacher':
      c.features.max_locations = 4
      _short_teacher(c)
  c.conditional.enabled = a.conditional
  if a.runlocal:
    methods.runlocal(c)
    gen.update(channels=(16, 8), dit_size='tiny')
    c.model.denoiser.update(channels=(8, 16), dit_size='tiny')
    c.train.update(batch_size=40, gen_batch_size=40)
    c.eval.classifier_channels = (8, 16, 32)
    # One evaluation, at the end, of 128 samples: a smoke run's evaluation
    # (the teacher's Heun sampler above all) cost more than its training.
    c.eval.num_samples = 128
    c.train.eval_every = c.train.steps
    c.dmd.update(teacher_batch_size=0, teacher_eval_samples=0)  # as above
  if a.generator == 'dit':
    # The DiT's noise is image-shaped plus its style codes (models/dit.py).
    gen.noise_dim = dit.generator_noise_dim(shape, gen)
  elif a.generator == 'teacher':
    c.dmd.generator = 'teacher'
    gen.noise_dim = a.size * a.size  # the teacher denoises image noise
  else:
    gen.noise_dim = 64 if not a.runlocal else 16
  return c
