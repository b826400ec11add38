"""The outer (meta) loop: task groups with persistent particle populations, and the outer step.

The layers here take the run's :class:`meta_train.spec.RunSpec` (or the part of it they
need), never its ConfigDict. A run keeps ``num_groups`` task groups. Group ``g`` holds a task
drawn from the zoo (its static fields fix the compiled program) and a persistent population of
``pairs_per_group`` antithetic pairs whose per-pair array fields are redrawn by the task's family
at every episode start. Every ``resample_every`` outer steps (0: never) each group draws a new
task and a new population; the draw depends only on ``(seed, group, epoch)``, so a resumed run
rebuilds the same groups. :class:`Epochs` is the one place that builds the groups of a draw
(and their fresh populations).

One outer step (:func:`make_outer_step`: ``outer_step(state, groups) -> (state, metrics)``):
every group's jitted estimator (compiled once per group key and cached, particle buffers donated)
returns a meta-gradient; the estimates are averaged and an optax meta-optimizer (default:
clip_by_global_norm then AdamW) updates ``theta``.

Sharding: particle arrays are placed with ``NamedSharding(mesh, P("particles"))`` (leading pair
axis split over the mesh), ``theta``, the meta-optimizer state and the data are replicated, so the
sum over pairs inside the estimator is an XLA all-reduce. With one device this is a no-op. With
``communication='shared_randomness'`` the perturbations are replicated too and only per-pair
scalars are all-gathered (``meta_train.communication``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import threading
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from meta_train import communication, estimators, guard, timing
from meta_train import config as config_lib
from meta_train.spec import MetaOptSettings, RunSpec
from tasks import family as family_lib

AXIS = communication.AXIS


class MetaState(NamedTuple):
    """The whole training state (a plain pytree; what a checkpoint holds)."""

    step: jax.Array  # int32 scalar: outer steps completed
    theta: Any
    opt_state: Any
    particles: tuple  # one Particles per group
    key: jax.Array  # raw PRNGKey (uint32[2]) of the run


class Group(NamedTuple):
    """Host-side description of one task group and its compiled functions."""

    task: Any
    family: Any
    estimate: Any  # jitted (theta, particles, key, data) -> (grad, particles, metrics)
    init: Any  # jitted (key, theta) -> Particles
    data: Any  # device-resident task data (replicated)
    steps_per_call: int  # inner steps per estimate, both antithetic members counted


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis ``"particles"`` over ``devices`` (default: all devices)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def particles_sharding(run: RunSpec, mesh: Mesh):
    """The shardings of a group's ``Particles`` (a prefix tree): split over the mesh, except the
    perturbations that ``shared_randomness`` keeps on every device
    (``meta_train.communication``)."""
    return communication.particles_sharding(mesh, run.estimator.communication)


def place_specs(tree, sharding_prefix):
    """``ShapeDtypeStruct``s of ``tree``'s leaves with the shardings of ``sharding_prefix`` (a
    tree prefix of ``tree``, e.g. one sharding for every leaf)."""
    return jax.tree.map(
        lambda s, sub: jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x), sharding=s), sub
        ),
        sharding_prefix,
        tree,
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def meta_learning_rate(lr: float, schedule: str, warmup: int, total_steps: int):
    """The meta-optimizer's rate: the float ``lr`` when constant without warmup (the optimizer
    state then holds no schedule count, as before schedules existed), else an optax schedule of
    the meta-update count (:class:`spec.MetaOptSettings` gives the equations)."""
    if schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, total_steps, 0.0)
    if warmup:
        return optax.warmup_constant_schedule(0.0, lr, warmup)
    return lr


def meta_optimizer(settings: MetaOptSettings) -> optax.GradientTransformation:
    """clip_by_global_norm(clip_norm) (none when 0) -> AdamW(:func:`meta_learning_rate`, b1, b2,
    weight_decay), as ``settings`` (the run's ``RunSpec.meta_opt``) says; with
    ``trained_leaves``, on those top-level leaves of theta only (``optax.multi_transform``, the
    others' updates zero). Its ``init`` raises ``config.ConfigError`` for a name theta lacks."""
    chain = []
    if settings.clip_norm > 0:
        chain.append(optax.clip_by_global_norm(settings.clip_norm))
    chain.append(
        optax.adamw(
            meta_learning_rate(
                settings.learning_rate,
                settings.schedule,
                settings.warmup_steps,
                getattr(settings, "total_steps", 0),  # a config's meta_opt has no total
            ),
            b1=settings.b1,
            b2=settings.b2,
            weight_decay=settings.weight_decay,
        )
    )
    names = getattr(settings, "trained_leaves", ())  # parsed by spec.from_config
    if not names:
        return optax.chain(*chain)

    def labels(theta):
        config_lib.check_leaf_names(names, theta)
        return {k: "trained" if k in names else "frozen" for k in theta}

    transforms = {"trained": optax.chain(*chain), "frozen": optax.set_to_zero()}
    return optax.multi_transform(transforms, labels)


def check_divides(pairs_per_group: int, mesh: Mesh) -> None:
    """Raise ``ConfigError`` unless the pairs of a group split evenly over the mesh's devices."""
    n_dev = mesh.devices.size
    if pairs_per_group % n_dev:
        raise config_lib.ConfigError(
            f"config.pairs_per_group={pairs_per_group} cannot be spread evenly over the {n_dev} "
            f"devices of the '{AXIS}' mesh axis; use a multiple of {n_dev}"
        )


INIT_CPU_OPTIONS = {"xla_backend_optimization_level": 0}  # XLA:CPU options of particle inits
LOOKAHEAD_SHARED = 8  # group draws announced to the compile-ahead thread with shared programs


class OneDeviceInit:
    """A particle init compiled for one device, its particles then split over the mesh.

    ``init(*args)`` runs ``fn`` (jitted with ``compiler_options``) on ``device`` (arguments
    copied there) and places the result with ``out`` (a ``Particles`` prefix of shardings). An
    init runs once per draw, so computing the whole population on one device costs
    milliseconds, and the program skips XLA's sharding propagation and SPMD partitioning (about
    a third of its compile). Under a trace (``jax.eval_shape``) ``fn`` is traced as it is (a jit
    with compiler options cannot be nested); :meth:`lower` lowers the program for ``device``.
    """

    def __init__(self, fn, compiler_options, device, out):
        self.fn, self.device, self.out = fn, device, out
        self.jitted = jax.jit(fn, compiler_options=compiler_options)

    def __call__(self, *args):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
            return jax.device_put(self.fn(*args), self.out)
        local = jax.device_put(args, jax.sharding.SingleDeviceSharding(self.device))
        # split on the host: no resharding programs to compile; copied, since device_get may
        # return views of the device buffers
        out = jax.tree.map(np.array, jax.device_get(self.jitted(*local)))
        return jax.device_put(out, self.out)

    def lower(self, *specs):
        sharding = jax.sharding.SingleDeviceSharding(self.device)
        return self.jitted.lower(*place_specs(specs, sharding))


class GroupCache:
    """Compiled estimate/init functions and device data, cached by program key.

    ``run``: the run's spec (its learned optimizer, estimator and group settings); ``zoo``:
    its task zoo (needed with ``share_programs``).

    The program key is ``(task.group_key, family)``; with ``share_programs`` it is the
    task's shape signature (``tasks.family.SharedPrograms``): every static configuration of a
    zoo with the same shapes runs in one compiled :class:`tasks.family.SwitchTask` program, the
    drawn configuration picked by an index in the group's data. The draws, and so the
    configurations a run visits, are the same either way.

    With ``compile_ahead`` a background thread compiles (``jit(...).lower(...).compile()``, which
    fills the jit's own cache) the programs of groups announced with :meth:`prefetch`, in the
    order announced, while the current draw trains. :class:`Epochs` announces the next
    ``lookahead`` draws: 1 with a program per configuration (a run meets hundreds, and the LRU
    below must not evict one before it runs), :data:`LOOKAHEAD_SHARED` with shared programs (a
    zoo has a few dozen; announcing draws well before they run lets the thread compile every new
    one before it is needed instead of the main thread waiting for it).

    Both caches are LRU-bounded to ``max_entries`` (default ``max(2 * num_groups, 8)``, shared
    programs ``max(2 * num_groups, 32)``): a long run over a large zoo meets hundreds of group
    keys, and keeping every compiled program alive exhausts the process's memory maps
    (XLA:CPU's JIT aborts with "Cannot allocate memory"). An evicted group is recompiled when
    drawn again (the persistent compilation cache of ``lopt-meta-train`` makes that cheap).
    """

    def __init__(
        self,
        run: RunSpec,
        mesh: Mesh,
        max_entries: int | None = None,
        *,
        zoo=None,
        compile_ahead: bool = False,
    ):
        check_divides(run.groups.pairs_per_group, mesh)
        self.run, self.lopt, self.mesh = run, run.lopt, mesh
        self.shared = None
        floor = 8
        if run.groups.share_programs:
            if zoo is None:
                raise ValueError("share_programs needs the run's zoo (GroupCache(..., zoo=...))")
            self.shared = family_lib.SharedPrograms(zoo)
            floor = 32
        self.max_entries = max_entries or max(2 * int(run.groups.num_groups), floor)
        self._fns: collections.OrderedDict = collections.OrderedDict()
        self._data: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.RLock()
        self._ahead: dict = {}  # program key -> Future of the compiled entry
        self._pool = None
        if compile_ahead:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "lopt-compile-ahead")
        self.wait_s = 0.0  # main thread: seconds spent waiting for the compile-ahead thread
        self.ahead_epoch = -1  # the last group draw handed to prefetch
        self.lookahead = LOOKAHEAD_SHARED if self.shared is not None else 1

    def close(self) -> None:
        """Drop compiles not yet started; one under way finishes in its thread (not waited
        for here; the interpreter joins it at exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _touch(self, cache: collections.OrderedDict, key) -> None:
        cache.move_to_end(key)
        while len(cache) > self.max_entries:
            cache.popitem(last=False)

    def _program(self, task, family):
        """``(program key, template task, family, host data, index)``; index is None unless
        programs are shared."""
        if self.shared is None:
            return (task.group_key, family), task, family, None, None
        template, fam, datas, index = self.shared.lookup(family, task)
        return (template.group_key, fam), template, fam, datas, index

    def _build(self, task, family, shared: bool):
        pairs = self.run.groups.pairs_per_group
        est = estimators.build(self.run.estimator, task, self.lopt, family, self.mesh)
        part, rep = particles_sharding(self.run, self.mesh), replicated(self.mesh)
        estimate = jax.jit(
            est.estimate,
            in_shardings=(rep, part, rep, rep),
            out_shardings=(rep, part, rep),
            donate_argnums=(1,),
        )
        # runs once per draw in milliseconds: XLA:CPU compiles it at LLVM level 0 and, in a
        # single-process run over several CPU devices, for one device, its particles then
        # split over the mesh (no SPMD partitioning: a third less compile each)
        first = self.mesh.devices.flat[0]
        options = INIT_CPU_OPTIONS if first.platform == "cpu" else None
        local = options is not None and self.mesh.devices.size > 1 and jax.process_count() == 1
        if shared:  # the template (its index) is an argument: one init program for all members
            fn = lambda key, theta, t, _e=est: _e.init(key, theta, pairs, task=t)
        else:
            fn = lambda key, theta, _e=est: _e.init(key, theta, pairs)
        if local:
            init = OneDeviceInit(fn, options, first, part)
        else:
            init = jax.jit(fn, in_shardings=rep, out_shardings=part, compiler_options=options)
        return estimate, init, 2 * pairs * est.steps_per_pair

    def _device_data(self, task, datas):
        """Device-resident data: the task's own, or (shared programs) the members' tuple."""
        key = task.group_key if datas is None else tuple(id(d) for d in datas)
        if key not in self._data:
            host = task.load_data() if datas is None else datas
            self._data[key] = (jax.device_put(host, replicated(self.mesh)), host)
        self._touch(self._data, key)
        return self._data[key][0]

    def _compile(self, ck, task, family, datas, index, theta_spec):
        """Build and compile ``ck``'s programs for arguments shaped like ``theta_spec``."""
        entry = self._build(task, family, index is not None)
        estimate, init, _ = entry
        rep, part = replicated(self.mesh), particles_sharding(self.run, self.mesh)
        key = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=rep)
        init_args = (key, theta_spec)
        if index is not None:
            init_args += (place_specs(task, rep),)
        init.lower(*init_args).compile()
        parts = place_specs(jax.eval_shape(init, *init_args), part)
        with self._lock:
            data = self._data_for(task, datas, index)
        data = place_specs(data, rep)
        estimate.lower(theta_spec, parts, key, data).compile()
        return entry

    def compile(self, task, family, theta_spec):
        """Build and compile the programs of ``task``'s group now, on this thread (what the
        compile-ahead thread does for :meth:`prefetch`; ``benchmarks/compile_time.py`` times it).
        ``theta_spec``: :func:`place_specs` of theta, replicated. Returns the program's task (a
        shared ``SwitchTask`` with ``share_programs``)."""
        ck, template, fam, datas, index = self._program(task, family)
        self._compile(ck, template, fam, datas, index, theta_spec)
        return template

    def _data_for(self, task, datas, index):
        data = self._device_data(task, datas)
        if index is None:
            return data
        return {"index": jax.device_put(np.int32(index), replicated(self.mesh)), "members": data}

    def prefetch(self, draws, theta) -> None:
        """Compile the programs of ``draws`` (``[(family, task)]``) in the background thread
        (no-op without ``compile_ahead``)."""
        if self._pool is None:
            return
        theta_spec = place_specs(theta, replicated(self.mesh))
        for fam, task in draws:
            ck, t, f, datas, index = self._program(task, fam)
            with self._lock:
                if ck in self._fns or ck in self._ahead:
                    continue
                self._ahead[ck] = self._pool.submit(
                    self._compile, ck, t, f, datas, index, theta_spec
                )

    def group(self, task, family) -> Group:
        ck, t, f, datas, index = self._program(task, family)
        with self._lock:
            future = self._ahead.pop(ck, None)
        if future is not None:
            t0 = time.perf_counter()
            entry = future.result()
            self.wait_s += time.perf_counter() - t0
            with self._lock:
                self._fns.setdefault(ck, entry)
        with self._lock:
            if ck not in self._fns:
                self._fns[ck] = self._build(t, f, index is not None)
            estimate, init, steps = self._fns[ck]
            self._touch(self._fns, ck)
            data = self._data_for(t, datas, index)
        if index is not None:  # bind the template (its index) as the init's third argument
            init = functools.partial(_call_with, init, jax.device_put(t, replicated(self.mesh)))
        return Group(task, f, estimate, init, data, steps)


def _call_with(fn, last, *args):
    return fn(*args, last)


def group_epoch(step: int, every: int) -> int:
    """Index of the group draw in force at outer step ``step`` (0-based)."""
    return 0 if every <= 0 else step // every


def draw_groups(zoo, seed: int, epoch: int, num_groups: int) -> list:
    """Host side: ``num_groups`` (family, task) draws for ``epoch``; a pure function of its args."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 0x6A09)
    out = []
    for g in range(num_groups):
        k = jax.random.fold_in(jax.random.fold_in(base, g), epoch)
        out.append(zoo.sample_with_family(k))
    return out


def _particle_key(state_key, epoch, g):
    return jax.random.fold_in(jax.random.fold_in(state_key, 1_000_003 + epoch), g)


def fresh_particles(groups: list[Group], key, epoch: int, theta, call=None) -> tuple:
    """Each group's fresh population for draw ``epoch`` (keys ``(run key, epoch, group)``).
    ``call(init, key, theta)`` runs an init (default: calls it; ``jax.eval_shape``: shapes only,
    at the top level, which a jit with compiler options such as :data:`INIT_CPU_OPTIONS` needs)."""
    call = call or (lambda init, *args: init(*args))
    return tuple(call(g.init, _particle_key(key, epoch, i), theta) for i, g in enumerate(groups))


class Epochs:
    """The group draws of a run: the one place that builds the groups of a draw.

    Draw ``e`` is in force for the outer steps ``[e * every, (e + 1) * every)``
    (``every = run.groups.resample_every``; 0: draw 0 for the whole run). Its groups are built
    once (:meth:`groups`); at its first step :meth:`enter` gives the state fresh populations
    (keys ``(run key, e, group)``) and hands the draws after it (``cache.lookahead`` of them, none
    past the run's ``outer_steps``) to the compile-ahead thread.
    """

    def __init__(self, cache: GroupCache, zoo, run: RunSpec):
        self.cache, self.zoo, self.run = cache, zoo, run
        self.every, self.num_groups = run.groups.resample_every, run.groups.num_groups
        self.last_epoch = self.index(max(int(run.outer_steps) - 1, 0))
        self._drawn: tuple[int, list[Group]] | None = None

    def index(self, step: int) -> int:
        return group_epoch(step, self.every)

    def groups(self, step: int) -> list[Group]:
        """The groups of the draw in force at outer step ``step``."""
        epoch = self.index(step)
        if self._drawn is None or self._drawn[0] != epoch:
            draws = draw_groups(self.zoo, self.run.seed, epoch, self.num_groups)
            self._drawn = epoch, [self.cache.group(task, fam) for fam, task in draws]
        return self._drawn[1]

    def particles(self, key, step: int, theta, groups: list[Group]) -> tuple:
        """Fresh populations of ``groups`` (the draw in force at ``step``) for ``theta``."""
        epoch = self.index(step)
        return fresh_particles(groups, key, epoch, theta)

    def enter(self, step: int, state: MetaState) -> tuple[MetaState, list[Group]]:
        """``(state, groups)`` for the outer step at ``step`` (``== state.step``): at the first
        step of a new draw the state's particles are replaced by the draw's fresh ones."""
        groups = self.groups(step)
        every = self.every
        if every > 0 and step > 0 and step % every == 0:
            state = state._replace(particles=self.particles(state.key, step, state.theta, groups))
        self.prefetch_ahead(step, state.theta)
        return state, groups

    def prefetch_ahead(self, step: int, theta) -> None:
        """Hand the draws after the one in force at ``step``, up to ``cache.lookahead`` of them,
        to the compile-ahead thread, each once (a draw is a pure function of (seed, epoch), so
        this changes nothing but when its programs compile)."""
        if self.every <= 0:
            return
        last = min(self.index(step) + self.cache.lookahead, self.last_epoch)
        first = max(self.index(step), self.cache.ahead_epoch) + 1
        for epoch in range(first, last + 1):
            self.cache.prefetch(draw_groups(self.zoo, self.run.seed, epoch, self.num_groups), theta)
        self.cache.ahead_epoch = max(self.cache.ahead_epoch, last)


def groups_for_step(cache: GroupCache, zoo, run: RunSpec, step: int) -> list[Group]:
    """The groups in force at outer step ``step`` of the run ``run``."""
    return Epochs(cache, zoo, run).groups(step)


def initial_theta(run: RunSpec):
    """The run's initial meta-parameters: those saved at ``run.init_from`` when it is set (read
    from disk: call once per run), else ``run.lopt``'s init (a function of ``run.seed``)."""
    theta = config_lib.load_init_theta(run.init_from, run.lopt)
    if theta is not None:
        return jax.tree.map(jnp.asarray, theta)
    return run.lopt.init_meta_params(jax.random.fold_in(jax.random.PRNGKey(run.seed), 1))


def run_key(seed: int) -> np.ndarray:
    """The run's raw PRNG key (uint32[2]) as a concrete numpy array."""
    return np.asarray(jax.random.PRNGKey(seed))


def init_state(
    run: RunSpec, groups: list[Group], mesh: Mesh, meta_opt, key=None, theta=None
) -> MetaState:
    """The state at step 0 of the run ``run`` with ``groups`` (draw 0). ``theta``: the run's
    :func:`initial_theta` (computed here when None). ``key`` (default :func:`run_key`) is passed
    in when tracing (``abstract_state``), where a key computed inside the trace could not become
    numpy."""
    key = run_key(run.seed) if key is None else key
    theta = initial_theta(run) if theta is None else theta
    rep = replicated(mesh)
    theta = jax.device_put(theta, rep)
    opt_state = jax.device_put(meta_opt.init(theta), rep)
    particles = fresh_particles(groups, key, 0, theta)
    step = jax.device_put(np.zeros((), np.int32), rep)  # global arrays (multi-host checkpoints)
    return MetaState(step, theta, opt_state, particles, jax.device_put(np.asarray(key), rep))


def tree_norm(tree) -> jax.Array:
    """The Euclidean norm of all of ``tree``'s leaves together (a scalar)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def combine_groups(grads: list, balance: bool = False):
    """The meta-gradient of an outer step from the per-group estimates ``grads`` (theta-shaped).

    ``balance`` False: their mean, ``(1/G) sum_g g_g``. True: the mean of unit vectors times the
    mean norm, ``(mean_g |g_g|) (1/G) sum_g g_g / |g_g|``: every group (one task draw) steers
    the direction equally, whatever its loss's dynamic range (a quadratic's log-loss moves by
    orders of magnitude where an autoencoder's moves by one), and the step keeps the scale of
    the plain mean's parts (per-task gradient normalisation, as in multi-task learning). A zero
    estimate contributes nothing (its norm is floored at 1e-30).
    """
    if not balance:
        return jax.tree.map(lambda *g: sum(g) / len(g), *grads)
    norms = [tree_norm(g) for g in grads]
    scale = sum(norms) / len(norms)
    weights = [scale / (len(grads) * jnp.maximum(n, 1e-30)) for n in norms]
    return jax.tree.map(lambda *g: sum(w * x for w, x in zip(weights, g, strict=True)), *grads)


def make_update(meta_opt, mesh: Mesh, balance_groups: bool = False):
    """Jitted ``(theta, opt_state, grads, step) -> (theta, opt_state, grad_norm, step + 1, ok)``;
    grads is a list of per-group estimates, combined here (:func:`combine_groups`). The step
    counter is advanced on the devices (a host-made global array would cost a cross-process
    consistency check per step). A non-finite meta-gradient or new theta leaves theta and
    opt_state as they were (``ok`` False; ``guard.keep_if_finite``)."""
    rep = replicated(mesh)

    def update(theta, opt_state, grads, step):
        grad = combine_groups(grads, balance_groups)
        updates, new_opt_state = meta_opt.update(grad, opt_state, theta)
        new = (optax.apply_updates(theta, updates), new_opt_state)
        (theta, opt_state), ok = guard.keep_if_finite(new, (theta, opt_state), grad)
        return (
            theta,
            opt_state,
            tree_norm(grad),
            step + 1,
            ok,
        )

    return jax.jit(update, out_shardings=(rep, rep, rep, rep, rep), donate_argnums=(0, 1))


def make_outer_step(meta_opt, mesh: Mesh, balance_groups: bool = False):
    """``outer_step(state, groups) -> (state, metrics)``: every group's estimate at
    ``state.theta`` (its particles advanced), combined (:func:`combine_groups`) and applied by
    ``meta_opt`` (:func:`make_update`). ``groups`` are those :meth:`Epochs.enter` gives for
    ``state``."""
    update = make_update(meta_opt, mesh, balance_groups)

    def outer_step(state: MetaState, groups: list[Group]) -> tuple[MetaState, dict]:
        clock = timing.CompileClock.get()
        t_window, c_window = time.perf_counter(), clock.thread_s()
        skey = jax.random.fold_in(state.key, int(state.step))
        grads, metrics, new_particles = [], [], []
        for g, (grp, parts) in enumerate(zip(groups, state.particles, strict=True)):
            grad, parts, m = grp.estimate(state.theta, parts, jax.random.fold_in(skey, g), grp.data)
            grads.append(grad)
            metrics.append(m)
            new_particles.append(parts)
        theta, opt_state, gnorm, step, ok = update(state.theta, state.opt_state, grads, state.step)
        state = MetaState(step, theta, opt_state, tuple(new_particles), state.key)
        jax.block_until_ready((metrics, gnorm, ok))
        device_s = time.perf_counter() - t_window - (clock.thread_s() - c_window)
        out = dict(
            loss=float(np.mean([float(m["loss"]) for m in metrics])),
            num_nonfinite=int(sum(int(m["num_nonfinite"]) for m in metrics)),
            num_episodes_ended=int(sum(int(m["num_episodes_ended"]) for m in metrics)),
            grad_norm=float(gnorm),
            update_skipped=not bool(ok),
            inner_steps=int(sum(grp.steps_per_call for grp in groups)),
            device_s=device_s,
        )
        return state, out

    return outer_step


def abstract_state(run: RunSpec, groups: list[Group], mesh: Mesh, meta_opt, theta) -> MetaState:
    """Shape/dtype/sharding skeleton of the state (restore target) of a run whose initial theta
    is ``theta``, with ``groups``' particles, without computing it."""
    key = run_key(run.seed)
    shapes = jax.eval_shape(lambda: init_state(run, [], mesh, meta_opt, key=key, theta=theta))
    particles = fresh_particles(groups, key, 0, theta, call=jax.eval_shape)  # not in that trace
    part, rep = particles_sharding(run, mesh), replicated(mesh)
    return MetaState(
        step=place_specs(shapes.step, rep),
        theta=place_specs(shapes.theta, rep),
        opt_state=place_specs(shapes.opt_state, rep),
        particles=tuple(place_specs(p, part) for p in particles),
        key=place_specs(shapes.key, rep),
    )
