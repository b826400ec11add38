"""Named tasks, meta-training zoos and evaluation suites.

Zoos (meta-training distributions):
  quickstart  embedded only (MNIST-1D MLPs, quadratics, linear regression, + augmentations);
              CPU minutes, needs no prepared data.
  small       quickstart + MNIST / Fashion-MNIST MLPs at 8x8 and 16x16 (+ reparam); CPU hours.
  small_broad small + muP MLPs of widths 32..128 and MLP autoencoders (8x8 / 16x16).
  broad       small_broad + reparameterised muP MLPs, 8x8 / 16x16 conv nets, small char
              transformers: every held-out task *type* (no held-out task); the ``scale_free``
              recipe.
  broad_synthetic  ``broad`` with twice the weight on quadratics and linear regression (cheap
              tasks whose best steps are 10-50x Muon's): the ``scale_free_size`` recipe.
  broad_28    ``broad`` + MLPs (also reparameterised) and MLP autoencoders on 28x28 images, the
              held-out size (other widths); the ``scale_free_late28`` recipe.
  broad_28_heavy  ``broad_28`` with 4x the weight on its 28x28 families (41% of the draws
              instead of 15%): the ``scale_free_heavy28`` recipe.
  mulo        muP MLPs on MNIST / Fashion-MNIST 8x8 / 16x16, widths 32..256 (muLO-style).
  pod         everything above + conv nets, MLP autoencoders, char transformers (also muP).
  char_lm     a specialist's zoo: only char transformers (widths 16..32, depths 1-2, sequence
              lengths 16 / 32, batches 8 / 16, half of them reparameterised); the
              ``char_lm_specialist`` recipe.
  char_lm_long_seq  ``char_lm`` with sequence length 64 as well (16 / 32 / 64).
  char_lm_wide  ``char_lm`` with width 64 as well (16 / 24 / 32 / 64): the held-out widths 40-56
              fall inside its range instead of beyond it.
  char_lm_deep  ``char_lm_wide`` with depth 3 as well (1 / 2 / 3): the held-out depth 3 falls
              inside its range (at sequence lengths and widths no held-out task has).
  char_lm_wide_plain  ``char_lm_wide`` without its reparameterised half: only the plain
              members, as the validation and held-out suites have them.
  char_lm_wide_default  ``char_lm_wide_plain`` at each model's default initial scale (no random
              initial scales): the family as users instantiate it.
  char_lm_long_seq_default  ``char_lm_wide_default`` with sequence length 64 as well (16 / 32 / 64):
              the held-out sequence lengths 48 and 64 fall inside its range.
  char_lm_validation_members  exactly the three ``char_lm_validation_wide`` sizes (a diagnostic:
              meta-training on it says whether a zoo misleads; nothing trained on it is chosen on
              that suite).
Suites (evaluation):
  heldout           >= 20 tasks, none of whose architecture-and-data any zoo can sample; they
                    differ in dataset (28x28 images, new activations), architecture, width and
                    horizon (``default_steps``).
  embedded_heldout  the embedded (no prepared data) part of ``heldout``: seconds each on CPU.
  validation        4 tasks of the training families at the held-out horizon, for choosing a
                    meta-training snapshot without looking at ``heldout``.
  char_lm_validation  2 members of the ``char_lm`` zoo's family at 1,000 steps: for choosing
                    the specialist's snapshot.
  char_lm_validation_long_seq  ``char_lm_validation`` + a member with sequence length 64 (of the
                    ``char_lm_long_seq`` zoo).
  char_lm_validation_wide  ``char_lm_validation`` + a width-64 member (of the ``char_lm_wide``
                    zoo).
  char_lm_validation_wide_long_seq  ``char_lm_validation_wide`` + the sequence-64 member of
                    ``char_lm_validation_long_seq``.
  char_lm_validation_deep  ``char_lm_validation_wide`` + a depth-3 member (of the
                    ``char_lm_deep`` zoo).
  char_lm_heldout   4 char transformers of sizes the ``char_lm`` zoo never samples (widths 24-56,
                    depths 1-3, sequences 24-64) trained 1,000-1,500 steps, 3-5x the ``char_lm``
                    zoo's longest episode: how the specialist does on its family beyond what it
                    saw (``lopt-eval --steps`` runs them longer).
  validation_broad  ``validation`` + a muP MLP, an autoencoder and a quadratic of the
                    ``small_broad`` families, for the same purpose.
  validation_scale  ``validation_broad`` + tasks of the held-out *sizes* (28x28 inputs, widths to
                    512, longer runs), none of them held out: for choosing ``scale_free`` snapshots.
"""

from __future__ import annotations

import functools

import jax

from tasks.augment import ReparamFamily, ReparamTask, SmallBatchFamily
from tasks.family import GridFamily, Zoo
from tasks.image import AutoencoderTask, ConvTask, ImageMLPTask
from tasks.lm import CharLMTask
from tasks.synthetic import LinearRegressionTask, QuadraticTask

INIT = (("init_scale", (0.5, 2.0)),)
IMAGES = ("mnist", "fashion_mnist")

# ---- families ---------------------------------------------------------------------------------
MLP_MNIST1D = GridFamily(
    "mlp_mnist1d",
    ImageMLPTask,
    choices=(
        ("width", (16, 32, 64)),
        ("depth", (1, 2)),
        ("activation", ("relu", "tanh")),
        ("batch_size", (64, 128)),
    ),
    fixed=(("dataset", "mnist1d"), ("image_size", 40)),
    array_ranges=INIT,
)
QUADRATIC = GridFamily(
    "quadratic",
    QuadraticTask,
    choices=(("dim", (8, 16, 32)), ("cond", (10.0, 100.0, 1000.0)), ("noise", (0.0, 0.1))),
    fixed=(("batch_size", 32),),
    array_ranges=INIT,
)
LINREG = GridFamily(
    "linreg",
    LinearRegressionTask,
    choices=(("dim", (8, 16, 32)), ("noise", (0.1, 0.5))),
    fixed=(("batch_size", 32),),
    array_ranges=INIT + (("feature_range", (0.3, 3.0)),),
)
MLP_IMAGE = GridFamily(
    "mlp_image",
    ImageMLPTask,
    choices=(
        ("dataset", IMAGES),
        ("image_size", (8, 16)),
        ("width", (32, 64, 128)),
        ("depth", (1, 2)),
        ("activation", ("relu", "tanh")),
    ),
    array_ranges=INIT,
)
MLP_MUP = GridFamily(
    "mlp_mup",
    ImageMLPTask,
    choices=(
        ("dataset", IMAGES),
        ("image_size", (8, 16)),
        ("width", (32, 64, 128, 256)),
        ("depth", (1, 2, 3)),
    ),
    fixed=(("mup", True),),
    array_ranges=INIT,
)
MLP_MUP_NARROW = GridFamily(  # widths <= 128, so that the held-out width-1024 MLPs are 8x wider
    "mlp_mup_narrow",
    ImageMLPTask,
    choices=(
        ("dataset", IMAGES),
        ("image_size", (8, 16)),
        ("width", (32, 64, 128)),
        ("depth", (1, 2)),
    ),
    fixed=(("mup", True),),
    array_ranges=INIT,
)
CONV = GridFamily(
    "conv",
    ConvTask,
    choices=(
        ("dataset", IMAGES),
        ("image_size", (8, 16)),
        ("conv_channels", ((8, 16), (16, 32), (8, 16, 32))),
        ("activation", ("relu", "tanh")),
    ),
    array_ranges=INIT,
)
AUTOENCODER = GridFamily(
    "autoencoder",
    AutoencoderTask,
    choices=(
        ("dataset", IMAGES),
        ("image_size", (8, 16)),
        ("width", (32, 64, 128)),
        ("bottleneck", (4, 8, 16)),
    ),
    array_ranges=INIT,
)
CHAR_LM = GridFamily(
    "char_lm",
    CharLMTask,
    choices=(("seq_len", (32, 64)), ("width", (32, 64)), ("depth", (1, 2))),
    array_ranges=INIT,
)
CHAR_LM_MUP = GridFamily(
    "char_lm_mup",
    CharLMTask,
    choices=(("seq_len", (32,)), ("width", (32, 64)), ("depth", (1, 2))),
    fixed=(("mup", True),),
    array_ranges=INIT,
)

_QUICKSTART = (
    (MLP_MNIST1D, 3.0),
    (QUADRATIC, 1.0),
    (LINREG, 1.0),
    (ReparamFamily(MLP_MNIST1D), 1.0),
    (SmallBatchFamily(MLP_MNIST1D, (8, 16, 32)), 1.0),
)
_SMALL = _QUICKSTART + ((MLP_IMAGE, 4.0), (ReparamFamily(MLP_IMAGE), 1.0))
_SMALL_BROAD = _SMALL + ((MLP_MUP_NARROW, 2.0), (AUTOENCODER, 1.0))
CONV_SMALL = GridFamily(  # the cheap end of CONV (8x8, batch 32), for CPU meta-training
    "conv_small",
    ConvTask,
    choices=(
        ("dataset", IMAGES),
        ("conv_channels", ((8, 16), (16, 32))),
        ("activation", ("relu", "tanh")),
    ),
    fixed=(("image_size", 8), ("batch_size", 32)),
    array_ranges=INIT,
)
CHAR_LM_SMALL = GridFamily(  # the cheap end of CHAR_LM (width 32, batch 8)
    "char_lm_small",
    CharLMTask,
    choices=(("depth", (1, 2)),),
    fixed=(("seq_len", 32), ("width", 32), ("batch_size", 8)),
    array_ranges=INIT,
)
_BROAD = _SMALL_BROAD + (
    (ReparamFamily(MLP_MUP_NARROW), 1.0),
    (CONV_SMALL, 0.5),
    (CHAR_LM_SMALL, 0.5),
)
# 28x28 inputs (the held-out suite's size, which the 8x8 / 16x16 zoos never show): widths and
# bottlenecks chosen to miss every held-out (w64 / w128 / w256 MLPs, a w128-z16 autoencoder) and
# validation (w192 MLP, w96-z16 autoencoder) configuration
MLP_IMAGE28 = GridFamily(
    "mlp_image28",
    ImageMLPTask,
    choices=(
        ("dataset", IMAGES),
        ("width", (32, 48, 96)),
        ("depth", (1, 2)),
        ("activation", ("relu", "tanh")),
    ),
    fixed=(("image_size", 28),),
    array_ranges=INIT,
)
AUTOENCODER28 = GridFamily(
    "autoencoder28",
    AutoencoderTask,
    choices=(("dataset", IMAGES), ("width", (48, 64)), ("bottleneck", (8, 32))),
    fixed=(("image_size", 28),),
    array_ranges=INIT,
)
_BROAD_28 = _BROAD + ((MLP_IMAGE28, 1.5), (ReparamFamily(MLP_IMAGE28), 0.5), (AUTOENCODER28, 1.0))
_BROAD_28_HEAVY = _BROAD + tuple((family, 4.0 * w) for family, w in _BROAD_28[len(_BROAD) :])
_BROAD_SYNTHETIC = tuple(
    (family, 2.0 * w if family in (QUADRATIC, LINREG) else w) for family, w in _BROAD
)
_MULO = ((MLP_MUP, 1.0),)
_POD = _SMALL + (
    (MLP_MUP, 2.0),
    (SmallBatchFamily(MLP_IMAGE, (16, 32)), 1.0),
    (CONV, 2.0),
    (AUTOENCODER, 1.0),
    (CHAR_LM, 2.0),
    (CHAR_LM_MUP, 1.0),
)


# a specialist's family: small char transformers, cheap enough for CPU meta-training
def _char_lm_family(
    name: str,
    seq_lens: tuple,
    widths: tuple = (16, 24, 32),
    depths: tuple = (1, 2),
    init_ranges: tuple = INIT,
) -> GridFamily:
    """Char transformers of widths ``widths``, depths ``depths``, batches 8 / 16, 2 heads and
    sequence lengths ``seq_lens``, initial scales drawn from ``init_ranges`` (``()``: each
    model's default initialisation): the specialist zoos' family."""
    return GridFamily(
        name,
        CharLMTask,
        choices=(
            ("seq_len", seq_lens),
            ("width", widths),
            ("depth", depths),
            ("batch_size", (8, 16)),
        ),
        fixed=(("heads", 2),),
        array_ranges=init_ranges,
    )


def _with_reparam(family) -> tuple:
    """``family`` and its randomly reparameterised copy, equally weighted."""
    return ((family, 1.0), (ReparamFamily(family), 1.0))


CHAR_LM_FAMILY = _char_lm_family("char_lm_family", (16, 32))
CHAR_LM_LONG_SEQ_FAMILY = _char_lm_family("char_lm_long_seq_family", (16, 32, 64))
CHAR_LM_WIDE_FAMILY = _char_lm_family("char_lm_wide_family", (16, 32), widths=(16, 24, 32, 64))
# the family as users instantiate it: default initialisation, no reparameterisation
CHAR_LM_WIDE_DEFAULT_FAMILY = _char_lm_family(
    "char_lm_wide_default_family", (16, 32), widths=(16, 24, 32, 64), init_ranges=()
)
CHAR_LM_LONG_SEQ_DEFAULT_FAMILY = _char_lm_family(
    "char_lm_long_seq_default_family", (16, 32, 64), widths=(16, 24, 32, 64), init_ranges=()
)
CHAR_LM_DEEP_FAMILY = _char_lm_family(
    "char_lm_deep_family", (16, 32), widths=(16, 24, 32, 64), depths=(1, 2, 3)
)
# a diagnostic zoo: exactly the sizes of the char_lm_validation_wide suite (fresh seeds, default
# initial scale), to tell a zoo that misleads meta-training from an objective that does
CHAR_LM_VALIDATION_MEMBERS = tuple(
    (
        GridFamily(
            f"char_lm_member_s{seq}_w{width}_d{depth}_b{batch}",
            CharLMTask,
            fixed=(("seq_len", seq), ("width", width), ("depth", depth), ("batch_size", batch)),
        ),
        1.0,
    )
    for seq, width, depth, batch in ((32, 32, 2, 16), (16, 24, 1, 8), (32, 64, 1, 16))
)
ZOOS = {
    "quickstart": Zoo("quickstart", _QUICKSTART),
    "small": Zoo("small", _SMALL),
    "small_broad": Zoo("small_broad", _SMALL_BROAD),
    "broad": Zoo("broad", _BROAD),
    "broad_synthetic": Zoo("broad_synthetic", _BROAD_SYNTHETIC),
    "broad_28": Zoo("broad_28", _BROAD_28),
    "broad_28_heavy": Zoo("broad_28_heavy", _BROAD_28_HEAVY),
    "mulo": Zoo("mulo", _MULO),
    "pod": Zoo("pod", _POD),
    "char_lm": Zoo("char_lm", _with_reparam(CHAR_LM_FAMILY)),
    "char_lm_long_seq": Zoo("char_lm_long_seq", _with_reparam(CHAR_LM_LONG_SEQ_FAMILY)),
    "char_lm_wide": Zoo("char_lm_wide", _with_reparam(CHAR_LM_WIDE_FAMILY)),
    "char_lm_deep": Zoo("char_lm_deep", _with_reparam(CHAR_LM_DEEP_FAMILY)),
    "char_lm_wide_plain": Zoo("char_lm_wide_plain", ((CHAR_LM_WIDE_FAMILY, 1.0),)),
    "char_lm_wide_default": Zoo("char_lm_wide_default", ((CHAR_LM_WIDE_DEFAULT_FAMILY, 1.0),)),
    "char_lm_long_seq_default": Zoo(
        "char_lm_long_seq_default", ((CHAR_LM_LONG_SEQ_DEFAULT_FAMILY, 1.0),)
    ),
    "char_lm_validation_members": Zoo("char_lm_validation_members", CHAR_LM_VALIDATION_MEMBERS),
}

# ---- suites -----------------------------------------------------------------------------------


def _embedded_heldout() -> list:
    return [
        ImageMLPTask(dataset="mnist1d", image_size=40, width=128, default_steps=1000),
        ImageMLPTask(
            dataset="mnist1d",
            image_size=40,
            width=48,
            depth=3,
            activation="gelu",
            default_steps=1000,
        ),
        ImageMLPTask(dataset="mnist1d", image_size=40, width=256, mup=True, default_steps=1000),
        QuadraticTask.create(dim=64, cond=1000.0, noise=0.1, batch_size=32, default_steps=500),
        LinearRegressionTask.create(dim=64, noise=0.3, batch_size=32, default_steps=500),
    ]


def _real_heldout() -> list:
    mlp, conv, ae, lm = ImageMLPTask, ConvTask, AutoencoderTask, CharLMTask
    fm = "fashion_mnist"
    return [
        mlp(dataset=fm, image_size=28, width=128, default_steps=2000),
        mlp(dataset="mnist", image_size=28, width=256, depth=2, default_steps=2000),
        mlp(dataset="mnist", image_size=16, width=512, default_steps=2000),
        mlp(dataset=fm, image_size=8, width=48, depth=3, activation="gelu", default_steps=3000),
        mlp(
            dataset="mnist", image_size=16, width=64, depth=2, activation="elu", default_steps=2000
        ),
        mlp(dataset="mnist", image_size=8, width=1024, mup=True, default_steps=2000),
        mlp(dataset=fm, image_size=16, width=1024, mup=True, default_steps=2000),
        mlp(dataset="mnist", image_size=28, width=128, depth=2, mup=True, default_steps=3000),
        mlp(dataset=fm, image_size=8, width=96, batch_size=32, default_steps=5000),
        conv(dataset="mnist", image_size=28, conv_channels=(16, 32), default_steps=2000),
        conv(dataset=fm, image_size=16, conv_channels=(32, 64), default_steps=2000),
        conv(dataset=fm, image_size=28, conv_channels=(8, 16, 32), default_steps=3000),
        ae(dataset="mnist", image_size=28, width=128, bottleneck=16, default_steps=2000),
        ae(dataset=fm, image_size=16, width=256, bottleneck=32, default_steps=2000),
        lm(seq_len=64, width=96, depth=2, heads=4, default_steps=2000),
        lm(seq_len=32, width=48, depth=3, heads=2, default_steps=3000),
        lm(seq_len=64, width=128, depth=2, heads=4, mup=True, default_steps=2000),
        ReparamTask.create(
            mlp(dataset=fm, image_size=28, width=64, default_steps=2000), jax.random.key(0)
        ),
    ]


def _validation() -> list:
    """Tasks of the ``small`` zoo's own families at the held-out horizon (2,000 steps): for
    choosing among meta-training snapshots without looking at ``heldout``."""
    mlp = ImageMLPTask
    return [
        mlp(dataset="fashion_mnist", image_size=16, width=128, depth=2, default_steps=2000),
        mlp(dataset="mnist", image_size=8, width=64, activation="tanh", default_steps=2000),
        mlp(dataset="mnist1d", image_size=40, width=64, depth=2, default_steps=2000),
        ReparamTask.create(
            mlp(dataset="mnist", image_size=8, width=32, default_steps=2000), jax.random.key(7)
        ),
    ]


def _validation_broad() -> list:
    """``validation`` plus tasks of the other ``small_broad`` families (muP MLP, autoencoder,
    quadratic) at held-out horizons: for choosing ``hyper_broad`` snapshots."""
    return _validation() + [
        ImageMLPTask(
            dataset="fashion_mnist", image_size=16, width=128, depth=2, mup=True, default_steps=2000
        ),
        AutoencoderTask(
            dataset="mnist", image_size=16, width=128, bottleneck=16, default_steps=2000
        ),
        QuadraticTask.create(
            jax.random.key(3), dim=32, cond=1000.0, noise=0.1, batch_size=32, default_steps=500
        ),
    ]


def _validation_scale() -> list:
    """``validation_broad`` plus the held-out suite's *sizes* (28x28 inputs, widths 192-512, a
    28x28 autoencoder, a 16x16 reparameterised MLP, linear regression), none of them a held-out
    task: a snapshot that only works on the zoo's 8x8 / 16x16 tasks shows here."""
    mlp, fm = ImageMLPTask, "fashion_mnist"
    return _validation_broad() + [
        mlp(dataset=fm, image_size=28, width=192, depth=2, default_steps=2000),
        mlp(dataset="mnist", image_size=16, width=512, mup=True, default_steps=2000),
        AutoencoderTask(dataset=fm, image_size=28, width=96, bottleneck=16, default_steps=2000),
        ReparamTask.create(
            mlp(dataset="mnist", image_size=16, width=64, default_steps=2000), jax.random.key(11)
        ),
        LinearRegressionTask.create(
            jax.random.key(5), dim=32, noise=0.3, batch_size=32, default_steps=1000
        ),
    ]


def _char_lm_validation() -> list:
    """Members of the ``char_lm`` zoo's family at 1,000 steps: the specialist's snapshot choice."""
    return [
        CharLMTask(seq_len=32, width=32, depth=2, batch_size=16, default_steps=1000),
        CharLMTask(seq_len=16, width=24, depth=1, batch_size=8, default_steps=1000),
    ]


def _char_lm_validation_plus(seq_len: int, width: int, depth: int = 1) -> list:
    """``char_lm_validation`` + a member of sequence ``seq_len``, width ``width`` and depth
    ``depth`` (batch 16, 1,000 steps): a size that a wider zoo of the family adds."""
    extra = CharLMTask(seq_len=seq_len, width=width, depth=depth, batch_size=16, default_steps=1000)
    return _char_lm_validation() + [extra]


def _char_lm_validation_long_seq() -> list:
    """``char_lm_validation`` + a sequence-64 member of the ``char_lm_long_seq`` zoo."""
    return _char_lm_validation_plus(seq_len=64, width=24)


def _char_lm_validation_wide() -> list:
    """``char_lm_validation`` + a width-64 member of the ``char_lm_wide`` zoo."""
    return _char_lm_validation_plus(seq_len=32, width=64)


def _char_lm_validation_wide_long_seq() -> list:
    """``char_lm_validation_wide`` + the sequence-64 member of ``char_lm_validation_long_seq``."""
    return _char_lm_validation_wide() + _char_lm_validation_long_seq()[-1:]


def _char_lm_validation_deep() -> list:
    """``char_lm_validation_wide`` + a depth-3 member of the ``char_lm_deep`` zoo."""
    return _char_lm_validation_wide() + _char_lm_validation_plus(16, 32, depth=3)[-1:]


def _char_lm_heldout() -> list:
    """Char transformers of sizes that no zoo samples (widths 24-56, depths 1-3, sequences
    24-64), trained 3-5x longer than the ``char_lm`` zoo's longest episode (300 steps)."""
    lm = CharLMTask
    return [
        lm(seq_len=48, width=24, depth=3, batch_size=16, default_steps=1000),
        lm(seq_len=32, width=48, depth=2, batch_size=16, default_steps=1000),
        lm(seq_len=64, width=56, depth=1, batch_size=16, default_steps=1000),
        lm(seq_len=24, width=40, depth=2, batch_size=16, default_steps=1500),
    ]


SUITES = {
    "embedded_heldout": _embedded_heldout,
    "validation": _validation,
    "validation_broad": _validation_broad,
    "validation_scale": _validation_scale,
    "heldout": lambda: _embedded_heldout() + _real_heldout(),
    "char_lm_validation": _char_lm_validation,
    "char_lm_validation_long_seq": _char_lm_validation_long_seq,
    "char_lm_validation_wide": _char_lm_validation_wide,
    "char_lm_validation_wide_long_seq": _char_lm_validation_wide_long_seq,
    "char_lm_validation_deep": _char_lm_validation_deep,
    "char_lm_heldout": _char_lm_heldout,
}


# ---- named tasks ------------------------------------------------------------------------------
def _family_defaults() -> list:
    """One default task per family (also what ``benchmarks/task_costs.py`` times)."""
    return [
        ImageMLPTask(dataset="mnist", image_size=8, width=32),  # the reference task, 2,410 params
        ImageMLPTask(dataset="mnist1d", image_size=40, width=32),
        ImageMLPTask(dataset="mnist", image_size=8, width=128, mup=True),
        ConvTask(dataset="mnist", image_size=8, conv_channels=(8, 16)),
        AutoencoderTask(dataset="mnist", image_size=8, width=32, bottleneck=8),
        CharLMTask(seq_len=32, width=32, depth=2),
        CharLMTask(seq_len=32, width=32, depth=2, mup=True),
        QuadraticTask.create(dim=16, cond=100.0, noise=0.1, batch_size=32),
        LinearRegressionTask.create(dim=16, noise=0.1, batch_size=32),
        ReparamTask.create(
            ImageMLPTask(dataset="mnist1d", image_size=40, width=32), jax.random.key(0)
        ),
    ]


@functools.cache
def _named() -> dict:
    out = {}
    suites = (
        SUITES["heldout"]()
        + _validation_scale()
        + _char_lm_validation_long_seq()
        + _char_lm_validation_deep()
        + _char_lm_heldout()
    )
    for t in _family_defaults() + suites:
        out.setdefault(t.name, t)
    return out


def family_defaults() -> list:
    return list(_family_defaults())


def names() -> list[str]:
    """Names accepted by :func:`get` (family defaults and every suite task)."""
    return sorted(_named())


def get(name: str):
    """The task called ``name``; an unknown name raises KeyError listing the known ones."""
    tasks = _named()
    if name not in tasks:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]


def zoo_names() -> list[str]:
    return list(ZOOS)


def zoo(name: str) -> Zoo:
    """The meta-training distribution ``name`` (see module docstring)."""
    if name not in ZOOS:
        raise KeyError(f"unknown zoo {name!r}; known zoos: {', '.join(ZOOS)}")
    return ZOOS[name]


def suite_names() -> list[str]:
    return list(SUITES)


def suite(name: str) -> list:
    """The evaluation suite ``name``: tasks with a recommended ``default_steps`` each."""
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]()
