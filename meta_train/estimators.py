"""Meta-gradient estimators over a particle population: PES, NRES, FullES and truncated BPTT.

Every estimator is an :class:`Estimator` ``(init, estimate)`` built by a factory that closes over
the group's task, the learned optimizer and an :class:`EstimatorSettings` (truncation length,
sigma, episode lengths, ...; the one place those settings are declared):

    est = pes(task, lopt, EstimatorSettings(truncation_length=50, sigma=0.01))
    est = build(EstimatorSettings(name="pes", ...), task, lopt)       # the same, by name
    particles = est.init(key, theta, num_pairs)                     # leaves [P, ...]
    grad, particles, metrics = est.estimate(theta, particles, key, data)

``estimate`` is pure and jit-able; ``data`` are the task's device-resident arrays (minibatches are
drawn inside the unroll). The inner loop is the learned optimizer's own optax transform, vmapped
once over the population ([P pairs] x [2 signs]) and scanned over the truncation with ``lax.scan``.

Losses. The loss of a step is the training loss of the minibatch at the parameters *before* the
update, divided by ``task.loss_normalizer`` and clipped to ``[-loss_clip, loss_clip]`` (with
``log_loss``: the log of that, floored; :func:`step_loss`), times the step's weight in its
episode (1, or with ``late_weight`` p > 0 :func:`late_weights`: ``(p + 1) ((t + 1) / L)^p``); the
loss of a truncation is the mean over its ``T`` steps.

Antithetic ES family (Vicol et al. 2021, "Unbiased Gradient Estimation in Unrolled Computation
Graphs with Persistent Evolution Strategies"; Li et al. 2023, "Noise-Reuse in Online Evolution
Strategies"). Pair ``i`` runs ``theta + eps_i`` and ``theta - eps_i`` with
``eps_i ~ N(0, sigma^2 I)``.
With ``xi_i`` the sum of the distinct perturbations the current episode has seen (this truncation's
included) the estimate is

    g = 1 / (2 P sigma^2) * sum_i [ xi_i  * (Lpre_i(+)  - Lpre_i(-))
                                 + eps_i * (Lpost_i(+) - Lpost_i(-)) ]

where ``Lpre`` sums the step losses before an episode end inside the truncation and ``Lpost`` the
losses of the episode that started inside it (which has only seen ``eps_i``). Without a reset this
is exactly ``xi_i (L+ - L-)``. After a reset ``xi_i`` restarts at ``eps_i``.
  - PES draws a fresh ``eps_i`` every truncation and accumulates it into ``xi_i``.
  - NRES reuses one ``eps_i`` for a whole episode (so ``xi_i = eps_i``), drawing a new one only
    after an episode ended.
  - FullES resets every pair at the start of each call and unrolls one whole episode.
  - TBPTT back-propagates through the truncation only (biased: ignores the dependence of the
    carried inner state on theta).

Communication (``meta_train.communication``). With a population split over devices, ``g`` is
either one XLA all-reduce of theta-sized partial sums (``allreduce``) or, with
``shared_randomness``, every device regenerates every pair's ``eps`` (and keeps every ``xi``),
only the per-pair differences and flags are all-gathered (optionally quantised to 8 or 1 bits),
and every device forms the same ``g`` locally.

Robustness. A pair whose loss or update turns NaN/inf is reset to a fresh episode, counted in
``metrics["num_nonfinite"]`` and contributes nothing to the gradient (the mean runs over the
remaining pairs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from meta_train.communication import Exchange, exchange
from meta_train.particles import LengthSchedule, Particles, fresh_episode, init_particles
from tasks.family import SwitchTask


class Estimator(NamedTuple):
    """``init(key, theta, num_pairs, random_offset=True, task=None) -> Particles`` (``task``
    replaces the group's template, e.g. to pass it as a jit argument) and
    ``estimate(theta, particles, key, data) -> (grad, particles, metrics)``;
    ``steps_per_pair`` is the number of inner steps one member runs per ``estimate`` call."""

    init: Callable[..., Particles]
    estimate: Callable[..., tuple[Any, Particles, dict]]
    steps_per_pair: int


@dataclasses.dataclass(frozen=True)
class EstimatorSettings:
    """The static settings of a meta-gradient estimator; the defaults are the published recipes'.

    Attributes:
        name: which estimator :func:`build` makes (a key of :data:`ESTIMATORS`).
        sigma: standard deviation of the perturbations ``eps ~ N(0, sigma^2 I)`` (ES only).
        truncation_length: inner steps per ``estimate`` call (``full_es``: whole episodes of
            ``episode.max_length`` steps instead).
        episode: the episode lengths of the particles (``particles.LengthSchedule``).
        loss_clip: a step's normalised loss is clipped to ``[-loss_clip, loss_clip]``.
        log_loss: the meta-loss is the mean log normalised loss (:func:`step_loss`).
        late_weight: the power ``p`` of :func:`late_weights` (0: every step counts the same).
        communication: how the estimate reaches every device (``communication.MODES``).
        exchange_quantization: of the exchanged scalars (``communication.QUANTIZATIONS``).
        perturbed_leaves: ES perturbs only these top-level leaves of theta (``()``: all). The
            estimate is then exactly zero on the others, and its variance, which grows with the
            number of perturbed dimensions (Nesterov & Spokoiny 2017), is that of the subspace.
    """

    name: str = "pes"
    sigma: float = 0.01
    truncation_length: int = 50
    episode: LengthSchedule = LengthSchedule("log_uniform", 100, 2000)
    loss_clip: float = 10.0
    log_loss: bool = False
    late_weight: float = 0.0
    communication: str = "allreduce"
    exchange_quantization: str = "none"
    perturbed_leaves: tuple[str, ...] = ()


# Names of the jax.named_scope around each part of an inner step: they appear in the compiled
# HLO's op_name metadata, where benchmarks/throughput_profile.py reads them.
SCOPES = {"batch": "inner_batch", "task": "inner_task_grad", "lopt": "inner_lopt_update"}


def _bcast(mask: jax.Array, x: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))


def _select(mask, a, b):
    """Per-pair ``where(mask, a, b)`` over matching pytrees (mask [P], leaves [P, ...])."""
    return jax.tree.map(lambda x, y: jnp.where(_bcast(mask, x), x, y), a, b)


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.isfinite(sum(jnp.sum(x.astype(jnp.float32)) for x in leaves))


def _top_name(path) -> str:
    """The top-level key of a pytree path (a dict key, else the path's first entry as text)."""
    first = path[0]
    return str(getattr(first, "key", first))


def _normal_like(key, tree, scale, only=()):
    """``scale * N(0, I)`` shaped like ``tree``; with ``only`` (top-level names), zero on every
    other leaf. The per-leaf keys do not depend on ``only``."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    keys = jax.random.split(key, len(paths))

    def draw(k, path, x):
        if only and _top_name(path) not in only:
            return jnp.zeros_like(x)
        return scale * jax.random.normal(k, x.shape, x.dtype)

    return treedef.unflatten([draw(k, p, x) for k, (p, x) in zip(keys, paths, strict=True)])


def _pm(theta, eps):
    """theta [..] and eps [P, ..] -> leaves [P, 2, ..] holding theta + eps and theta - eps."""
    return jax.tree.map(lambda t, e: t + jnp.stack([e, -e], axis=1), theta, eps)


def _pair_keys(pair_keys: jax.Array, key) -> jax.Array:
    """This call's key of every pair: ``particles.key`` [P, 2] folded with a salt from ``key``."""
    salt = jax.random.bits(key, (), jnp.uint32)
    return jax.vmap(jax.random.fold_in, (0, None))(pair_keys, salt)


LOG_LOSS_FLOOR = 1e-4  # log mode: normalised losses below this count as this


def step_loss(loss, normalizer: float, loss_clip: float, log_loss: bool = False) -> jax.Array:
    """The meta-loss of one inner step: ``loss / normalizer`` clipped to ``[-clip, clip]``, or with
    ``log_loss`` ``log(clip(loss / normalizer, LOG_LOSS_FLOOR, clip))``; non-finite -> the worst
    value. ``log_loss`` weighs a halving of the loss the same at any loss level, so late training
    (small losses, e.g. autoencoders, quadratics) counts as much as the early drop (cf. the log
    meta-objectives of Metz et al. 2019, "Understanding and correcting pathologies")."""
    lval = loss.astype(jnp.float32) / normalizer
    if log_loss:
        worst = jnp.log(loss_clip)
        lval = jnp.log(jnp.clip(lval, LOG_LOSS_FLOOR, loss_clip))
        return jnp.where(jnp.isfinite(lval), lval, worst)
    return jnp.where(jnp.isfinite(lval), jnp.clip(lval, -loss_clip, loss_clip), loss_clip)


def late_weights(step, length, power: float) -> jax.Array:
    """The weight ``(p + 1) ((t + 1) / L)^p`` of inner step ``t`` (0-based, ``step``) of an episode
    of ``length`` L steps; p = ``power`` >= 0. Over an episode the weights average about 1
    (exactly, as L grows), and with p > 0 the late steps count more: at p = 1 the last step
    counts twice the mean and the first almost nothing, so the meta-objective leans toward the
    loss the inner run *ends* at rather than how fast it falls early (the short-horizon bias of
    Wu et al. 2018, "Understanding short-horizon bias in stochastic meta-optimization").
    ``step``, ``length``: int arrays of one shape; p = 0 gives ones."""
    frac = (step + 1).astype(jnp.float32) / length.astype(jnp.float32)
    return (power + 1.0) * frac**power


def loss_normalizer(task, data):
    """``task.loss_normalizer``, or ``task.normalizer(data)`` for a task that runs several
    configurations in one program (``tasks.family.SwitchTask``: the drawn one's, from data)."""
    if isinstance(task, SwitchTask):
        return task.normalizer(data)
    return float(task.loss_normalizer)


class _Static(NamedTuple):
    """What an estimator closes over: the group's task and the learned optimizer, its settings
    (with the truncation and episode lengths its unroll runs), the task's parameter tags, the
    family's per-episode redraw of the task's arrays, and how the estimate is exchanged."""

    task: Any
    lopt: Any
    settings: EstimatorSettings
    param_tags: Any
    resample_task: Any
    exchange: Exchange


class _Carry(NamedTuple):
    """The scan carry of :func:`_unroll`: every member's inner state (leaves [P, 2, ...] for
    params and opt_state, [P, ...] for the task's arrays) and the running sums of the truncation."""

    params: Any
    opt_state: Any
    step: jax.Array  # [P] steps into the current episode
    length: jax.Array  # [P] the current episode's length
    task: Any
    seen: jax.Array  # [P] bool: the pair's episode ended (or it was reset) in this truncation
    bad: jax.Array  # [P] bool: a non-finite loss or update in this truncation
    ended: jax.Array  # [P] int32: episodes completed in this truncation
    pre: jax.Array  # [P, 2] step losses before the pair's first reset
    post: jax.Array  # [P, 2] step losses after it


def _fresh_episodes(st: _Static, tasks, theta_pm, keys):
    """``fresh_episode`` of every pair: ``(task, params, opt_state, length)``, leaves [P, ...]."""
    return jax.vmap(
        lambda task, th, k: fresh_episode(
            task, st.lopt, th, k, st.settings.episode, st.param_tags, st.resample_task
        )
    )(tasks, theta_pm, keys)


_INNER_FIELDS = ("params", "opt_state", "step", "length", "task")  # what an unroll changes


def unroll_keys(keys):
    """An unroll's keys from its pairs' keys ``[P, 2]`` (raw): ``(fresh, steps)``, each
    ``[P, 2]``: the keys of the episodes that start inside it and of its inner steps."""
    k_fresh, k_steps = jnp.split(jax.vmap(lambda k: jax.random.split(k, 2))(keys), 2, axis=1)
    return k_fresh[:, 0], k_steps[:, 0]


def step_keys(k_steps, t):
    """Inner step ``t``'s ``(batch, loss)`` keys, each ``[P, 2]``, from an unroll's step keys."""
    keys = jax.vmap(jax.random.fold_in, (0, None))(k_steps, t)
    k_batch, k_loss = jnp.split(jax.vmap(jax.random.split)(keys), 2, axis=1)
    return k_batch[:, 0], k_loss[:, 0]


def _unroll(st: _Static, theta_pm, particles: Particles, keys, data):
    """Run ``T`` inner steps of every member. theta_pm leaves [P, 2, ...]; keys [P, 2].

    Returns ``(particles', sums)`` with sums = dict(pre [P,2], post [P,2], seen [P], bad [P],
    ended [P]); ``particles'`` has updated params/opt_state/step/length/task only. With the
    pairs split over a mesh, XLA partitions the unroll (the pairs are independent).
    """
    params0, opt_state0, step0, length0, task0 = (getattr(particles, f) for f in _INNER_FIELDS)
    k_fresh, k_steps = unroll_keys(keys)
    f_task, f_params, f_opt, f_length = _fresh_episodes(st, task0, theta_pm, k_fresh)
    norm = loss_normalizer(st.task, data)

    def member_grads(tasks, params, keys, batches):
        """Every member's (loss, grads): leaves [P, 2, ...]."""
        if isinstance(st.task, SwitchTask):  # one switch; gradients inside the drawn branch
            return st.task.population_value_and_grad(
                tasks, params, keys, batches["batch"], data["index"]
            )

        def one_pair(task, member_params, key, batch):
            grad = jax.value_and_grad(lambda q: task.loss(q, key, batch))
            return jax.vmap(grad)(member_params)

        return jax.vmap(one_pair)(tasks, params, keys, batches)

    def member_update(th, p, s, grads, loss, length):
        tx = st.lopt.optimizer(th, num_steps=length, param_tags=st.param_tags)
        updates, s = tx.update(grads, s, p, value=loss)
        ok = jnp.isfinite(loss) & _all_finite(updates)
        return optax.apply_updates(p, updates), s, ok

    def pop_step(th_pm, tasks, params, opt_state, length, k_batch, k_loss):
        """One inner step of every member: leaves [P, 2, ...] (theta_pm, params, opt_state),
        [P, ...] (tasks, length, keys). Returns (params, opt_state, loss [P, 2], ok [P, 2])."""
        with jax.named_scope(SCOPES["batch"]):
            batches = jax.vmap(lambda t, k: t.batch(k, data))(tasks, k_batch)
        with jax.named_scope(SCOPES["task"]):
            loss, grads = member_grads(tasks, params, k_loss, batches)
        with jax.named_scope(SCOPES["lopt"]):
            pair_update = jax.vmap(member_update, in_axes=(0, 0, 0, 0, 0, None))
            params, opt_state, ok = jax.vmap(pair_update)(
                th_pm, params, opt_state, grads, loss, length
            )
        return params, opt_state, loss, ok

    num_pairs = step0.shape[0]
    false = jnp.zeros((num_pairs,), bool)
    zero2 = jnp.zeros((num_pairs, 2), jnp.float32)

    def body(c: _Carry, t) -> tuple[_Carry, None]:
        params, opt_state, loss, ok = pop_step(
            theta_pm, c.task, c.params, c.opt_state, c.length, *step_keys(k_steps, t)
        )
        lval = step_loss(loss, norm, st.settings.loss_clip, st.settings.log_loss)
        if st.settings.late_weight:
            lval = lval * late_weights(c.step, c.length, st.settings.late_weight)[:, None]
        ok_pair = ok.all(axis=1)
        step = c.step + 1
        done = step >= c.length
        reset = done | ~ok_pair
        carry = _Carry(
            params=_select(reset, f_params, params),
            opt_state=_select(reset, f_opt, opt_state),
            step=jnp.where(reset, 0, step),
            length=jnp.where(reset, f_length, c.length),
            task=_select(reset, f_task, c.task),
            seen=c.seen | reset,
            bad=c.bad | ~ok_pair,
            ended=c.ended + (done & ok_pair).astype(jnp.int32),
            pre=c.pre + jnp.where(c.seen[:, None], 0.0, lval),
            post=c.post + jnp.where(c.seen[:, None], lval, 0.0),
        )
        return carry, None

    init = _Carry(
        params=params0,
        opt_state=opt_state0,
        step=step0,
        length=length0,
        task=task0,
        seen=false,
        bad=false,
        ended=jnp.zeros((num_pairs,), jnp.int32),
        pre=zero2,
        post=zero2,
    )
    c, _ = jax.lax.scan(body, init, jnp.arange(st.settings.truncation_length))
    inner = dict(zip(_INNER_FIELDS, (c.params, c.opt_state, c.step, c.length, c.task), strict=True))
    sums = dict(pre=c.pre, post=c.post, seen=c.seen, bad=c.bad, ended=c.ended)
    return particles._replace(**inner), sums


def _metrics(sums, T):
    good = ~sums["bad"]
    n_good = jnp.maximum(good.sum(), 1).astype(jnp.float32)
    per_pair = (sums["pre"] + sums["post"]).mean(axis=1) / T
    return dict(
        # NaN (logged as null), never a perfect-looking 0.0, when every pair diverged
        loss=jnp.where(good.any(), jnp.where(good, per_pair, 0.0).sum() / n_good, jnp.nan),
        num_nonfinite=sums["bad"].sum(),
        num_episodes_ended=sums["ended"].sum(),
    )


NoisePolicy = Callable[[Any, Any, Any, jax.Array], tuple[Any, Any]]


def fresh_noise(draw, eps, xi, redraw):
    """PES: this truncation's ``eps`` is the fresh ``draw``, accumulated into ``xi``.

    A noise policy maps ``(draw, eps, xi, redraw)`` (``draw``: a new ``eps`` per pair, leaves
    [P, ...]; the others: those fields of the particles) to this truncation's ``(eps, xi)``."""
    del eps, redraw
    return draw, jax.tree.map(jnp.add, xi, draw)


def reused_noise(draw, eps, xi, redraw):
    """NRES (and FullES): keep the episode's ``eps``; a pair whose episode ended last truncation
    (``redraw``) takes the fresh ``draw``, which then starts its ``xi``."""
    eps = _select(redraw, draw, eps)
    xi = jax.tree.map(lambda x, d: x + jnp.where(_bcast(redraw, d), d, 0.0), xi, draw)
    return eps, xi


def _split3(keys):
    """[P, 2] keys -> three [P, 2] keys (noise, unroll, episode reset)."""
    k = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
    return k[:, 0], k[:, 1], k[:, 2]


def _es_estimator(st: _Static, noise: NoisePolicy, full_episode: bool = False) -> Estimator:
    T, sigma = st.settings.truncation_length, st.settings.sigma
    # shared randomness: each device runs its own pairs and holds every pair's perturbation
    split, local = st.exchange.split_pairs, st.exchange.on_every_device

    def init(key, theta, num_pairs, random_offset=True, task=None):
        return init_particles(
            key,
            st.task if task is None else task,
            st.lopt,
            theta,
            num_pairs,
            st.settings.episode,
            st.param_tags,
            st.resample_task,
            random_offset=random_offset and not full_episode,
        )

    def estimate(theta, particles: Particles, key, data):
        # shared randomness: every device derives every pair's keys (a replicated computation)
        keys = local(_pair_keys)(particles.key, key)
        k_eps, k_run, k_reset = local(_split3)(keys)
        if full_episode:  # every call is a whole, fresh episode
            theta_pm0 = split(_pm(theta, jax.tree.map(jnp.zeros_like, particles.eps)))
            fresh = _fresh_episodes(st, particles.task, theta_pm0, split(k_reset))
            particles = particles._replace(
                task=fresh[0],
                params=fresh[1],
                opt_state=fresh[2],
                length=fresh[3],
                step=jnp.zeros_like(particles.step),
                redraw=jnp.ones_like(particles.redraw),
                xi=jax.tree.map(jnp.zeros_like, particles.xi),
            )
        # shared randomness: every device draws every pair's eps
        only = st.settings.perturbed_leaves
        draw = local(lambda th, k: jax.vmap(lambda kk: _normal_like(kk, th, sigma, only))(k))(
            theta, k_eps
        )
        eps, xi = local(noise)(draw, particles.eps, particles.xi, particles.redraw)
        particles, sums = _unroll(st, split(_pm(theta, eps)), particles, split(k_run), data)
        good = ~sums["bad"]
        diffs = jnp.stack([s[:, 0] - s[:, 1] for s in (sums["pre"], sums["post"])], axis=1)
        diffs = jnp.where(good[:, None], diffs, 0.0) / T
        # shared randomness: all-gather the [P, 2] differences and flags (a no-op otherwise)
        diffs, flags = exchange(st.exchange, diffs, jnp.stack([good, sums["seen"]], 1), keys)
        good, seen = flags[:, 0], flags[:, 1]
        w_pre, w_post = diffs[:, 0], diffs[:, 1]
        n_good = jnp.maximum(good.sum(), 1).astype(jnp.float32)
        scale = 1.0 / (2.0 * n_good * sigma**2)
        # Sum the two terms per pair first, so that a sharded population all-reduces one
        # theta-sized partial sum, not one per term (allreduce mode).

        def combine(xi, eps, w_pre, w_post, scale, seen):
            """The estimate and the next xi (in shared mode computed on every device)."""
            grad = jax.tree.map(
                lambda x, e: scale * (_bcast(w_pre, x) * x + _bcast(w_post, e) * e).sum(axis=0),
                xi,
                eps,
            )
            return grad, _select(seen, eps, xi)

        grad, xi = local(combine)(xi, eps, w_pre, w_post, scale, seen)
        particles = particles._replace(eps=eps, xi=xi, redraw=seen)
        return grad, particles, _metrics(sums, T)

    return Estimator(init=init, estimate=estimate, steps_per_pair=T)


def _static(task, lopt, settings: EstimatorSettings, resample_task=None, mesh=None) -> _Static:
    """Check ``settings`` (``ValueError`` naming the first bad one) and close over them."""
    T = settings.truncation_length
    if T < 1:
        raise ValueError(f"truncation_length must be >= 1, got {T}")
    if not settings.loss_clip > 0:
        raise ValueError(f"loss_clip must be > 0, got {settings.loss_clip}")
    if not settings.late_weight >= 0:
        raise ValueError(f"late_weight must be >= 0, got {settings.late_weight}")
    settings.episode.validate(T)
    exchange_ = Exchange(settings.communication, settings.exchange_quantization, mesh)
    settings = dataclasses.replace(
        settings,
        truncation_length=int(T),
        loss_clip=float(settings.loss_clip),
        log_loss=bool(settings.log_loss),
        late_weight=float(settings.late_weight),
    )
    return _Static(task, lopt, settings, task.param_tags(), resample_task, exchange_.validate())


def _check_sigma(sigma):
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")


DEFAULT = EstimatorSettings()


def online_es(
    task,
    lopt,
    settings: EstimatorSettings = DEFAULT,
    *,
    noise: NoisePolicy,
    resample_task=None,
    mesh=None,
) -> Estimator:
    """Antithetic online ES over truncations of persistent episodes.

    Args:
        task: the group's task (its template, when its arrays are redrawn per episode).
        lopt: the learned optimizer.
        settings: sigma, truncation, episode lengths, meta-loss and communication.
        noise: which ``eps`` each truncation uses (:func:`fresh_noise`: PES;
            :func:`reused_noise`: NRES).
        resample_task: ``(key, task) -> task``, the family's redraw of the task's arrays at
            every episode start (None: the task as it is).
        mesh: the ``particles`` mesh the pairs are split over (``communication``; None: one
            device).

    Returns:
        The :class:`Estimator`.
    """
    _check_sigma(settings.sigma)
    st = _static(task, lopt, settings, resample_task, mesh)
    return _es_estimator(st, noise)


def pes(task, lopt, settings: EstimatorSettings = DEFAULT, **kw) -> Estimator:
    """Persistent evolution strategies (antithetic): a fresh eps every truncation, accumulated.
    Arguments: those of :func:`online_es`."""
    return online_es(task, lopt, settings, noise=fresh_noise, **kw)


def nres(task, lopt, settings: EstimatorSettings = DEFAULT, **kw) -> Estimator:
    """Noise-reuse evolution strategies: one eps per episode (antithetic). Arguments: those of
    :func:`online_es`."""
    return online_es(task, lopt, settings, noise=reused_noise, **kw)


def full_es(
    task, lopt, settings: EstimatorSettings = DEFAULT, *, resample_task=None, mesh=None
) -> Estimator:
    """Antithetic ES over whole episodes of ``settings.episode.max_length`` steps (one episode
    per call; ``settings.truncation_length`` is not used). Arguments: those of
    :func:`online_es`."""
    _check_sigma(settings.sigma)
    length = settings.episode.max_length
    whole = dataclasses.replace(
        settings, truncation_length=length, episode=LengthSchedule("constant", length, length)
    )
    st = _static(task, lopt, whole, resample_task, mesh)
    return _es_estimator(st, reused_noise, full_episode=True)


def tbptt(
    task, lopt, settings: EstimatorSettings = DEFAULT, *, resample_task=None, mesh=None
) -> Estimator:
    """Truncated backprop through time: exact gradient of the truncation's mean loss with the
    carried inner state treated as a constant (biased). Non-finite gradients of a pair are
    dropped (the pair is reset and counted). ``settings.sigma`` and the communication settings
    are not used: the exact gradient needs no perturbation and no exchange. Arguments: those of
    :func:`online_es`."""
    st = _static(task, lopt, settings, resample_task, mesh)
    T = st.settings.truncation_length

    def init(key, theta, num_pairs, random_offset=True, task=None):
        return init_particles(
            key,
            st.task if task is None else task,
            lopt,
            theta,
            num_pairs,
            st.settings.episode,
            st.param_tags,
            resample_task,
            random_offset=random_offset,
        )

    def estimate(theta, particles: Particles, key, data):
        k_run = _pair_keys(particles.key, key)

        def objective(th):
            num_pairs = particles.step.shape[0]
            th_pm = jax.tree.map(lambda t: jnp.broadcast_to(t, (num_pairs, 2, *t.shape)), th)
            new, sums = _unroll(st, th_pm, particles, k_run, data)
            good = ~sums["bad"]
            per_pair = (sums["pre"] + sums["post"]).mean(axis=1) / T
            obj = jnp.where(good, per_pair, 0.0).sum() / jnp.maximum(good.sum(), 1).astype(
                jnp.float32
            )
            return obj, (new, sums)

        grad, (particles, sums) = jax.grad(objective, has_aux=True)(theta)
        ok = _all_finite(grad)
        grad = jax.tree.map(lambda g: jnp.where(ok, g, 0.0), grad)
        return grad, particles, _metrics(sums, T)

    return Estimator(init=init, estimate=estimate, steps_per_pair=T)


ESTIMATORS: dict[str, Callable[..., Estimator]] = {
    "pes": pes,
    "nres": nres,
    "full_es": full_es,
    "tbptt": tbptt,
}
"""The estimators by the name ``EstimatorSettings.name`` (``config.estimator``) gives."""


def build(settings: EstimatorSettings, task, lopt, family=None, mesh=None) -> Estimator:
    """The estimator ``settings.name`` of :data:`ESTIMATORS` for one task group.

    Args:
        settings: the estimator's settings.
        task: the group's task.
        lopt: the learned optimizer.
        family: the task's family, whose ``sample_arrays`` redraws the task's arrays at every
            episode start (None: the task as it is).
        mesh: the ``particles`` mesh (``communication='shared_randomness'``; None: one device).

    Returns:
        The :class:`Estimator`.
    """
    resample = None if family is None else family.sample_arrays
    return ESTIMATORS[settings.name](task, lopt, settings, resample_task=resample, mesh=mesh)
