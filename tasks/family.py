"""Task families over finite grids of static settings, and zoos (weighted mixtures of families).

A :class:`GridFamily` draws each static field uniformly from its list of choices (host side:
this fixes the task group) and then the array fields with the task's own pure-JAX
``sample_arrays`` (e.g. ``init_scale`` log-uniform in ``init_scale``). Its support is finite and
enumerable (:meth:`GridFamily.support`), so disjointness of a held-out suite from a training zoo
is checkable: :meth:`arch_keys` lists every architecture-and-data the family can produce.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tasks import common


def host_rng(key: jax.Array) -> np.random.Generator:
    """A numpy Generator seeded by a JAX key (for host-side choices of static fields)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


@dataclasses.dataclass(frozen=True)
class GridFamily:
    """Tasks of class ``task_cls`` with static fields drawn from ``choices``.

    Args:
      name: family name.
      task_cls: a task dataclass with a ``sample_arrays(key, **array_ranges)`` method.
      choices: ``((field, (option, ...)), ...)``: each field uniform over its options.
      fixed: ``((field, value), ...)``: static fields shared by all tasks of the family.
      array_ranges: ``((name, value), ...)`` keyword arguments of ``task.sample_arrays``,
        e.g. ``(("init_scale", (0.5, 2.0)),)``.
    """

    name: str
    task_cls: type
    choices: tuple = ()
    fixed: tuple = ()
    array_ranges: tuple = ()

    def __post_init__(self):
        fields = {f.name for f in dataclasses.fields(self.task_cls)}
        for field, options in self.choices:
            if field not in fields:
                raise ValueError(
                    f"family {self.name}: {self.task_cls.__name__} has no field {field!r}"
                )
            if not options:
                raise ValueError(f"family {self.name}: no choices for field {field!r}")
        for field, _ in self.fixed:
            if field not in fields:
                raise ValueError(
                    f"family {self.name}: {self.task_cls.__name__} has no field {field!r}"
                )
        self.support()  # validates every grid point now, with the field name on error

    def _build(self, values: dict):
        return self.task_cls(**dict(self.fixed), **values)

    def support(self) -> list:
        """Every static configuration as a task (array fields at their defaults)."""
        names = [f for f, _ in self.choices]
        grids = itertools.product(*(opts for _, opts in self.choices))
        return [self._build(dict(zip(names, vals, strict=True))) for vals in grids]

    def arch_keys(self) -> frozenset:
        return frozenset(common.arch_key(t) for t in self.support())

    def group_keys(self) -> frozenset:
        return frozenset(t.group_key for t in self.support())

    def contains(self, task) -> bool:
        """Whether ``task``'s static configuration is in this family's support."""
        return type(task) is self.task_cls and task.group_key in self.group_keys()

    def sample(self, key: jax.Array):
        """Host side: static fields uniformly from ``choices``, then the array fields."""
        k_static, k_arrays = jax.random.split(key)
        rng = host_rng(k_static)
        values = {f: opts[int(rng.integers(len(opts)))] for f, opts in self.choices}
        return self.sample_arrays(k_arrays, self._build(values))

    def sample_arrays(self, key: jax.Array, task):
        """Pure JAX (jit/vmap-able): redraw only the array fields of ``task``."""
        return task.sample_arrays(key, **dict(self.array_ranges))


@dataclasses.dataclass(frozen=True)
class Zoo:
    """A meta-training distribution: ``families`` is a tuple of (family, weight)."""

    name: str
    families: tuple

    def __post_init__(self):
        if not self.families:
            raise ValueError(f"zoo {self.name}: no families")
        for fam, w in self.families:
            if not w > 0:
                raise ValueError(f"zoo {self.name}: weight of family {fam.name} must be > 0")

    @property
    def probabilities(self) -> np.ndarray:
        w = np.array([w for _, w in self.families], np.float64)
        return w / w.sum()

    def sample_with_family(self, key: jax.Array) -> tuple[Any, Any]:
        """Host side: a family by weight, then a task from it; returns (family, task)."""
        k_fam, k_task = jax.random.split(key)
        i = int(host_rng(k_fam).choice(len(self.families), p=self.probabilities))
        fam = self.families[i][0]
        return fam, fam.sample(k_task)

    def sample(self, key: jax.Array):
        return self.sample_with_family(key)[1]

    def family_of(self, task):
        """The first family whose support contains ``task`` (to call its ``sample_arrays``)."""
        for fam, _ in self.families:
            if fam.contains(task):
                return fam
        raise ValueError(f"task {task.name} is not in zoo {self.name!r}")

    def arch_keys(self) -> frozenset:
        return frozenset().union(*(fam.arch_keys() for fam, _ in self.families))


# ---- shared group programs ----------------------------------------------------------------------
# A zoo has hundreds of static configurations but far fewer *shapes*: activations, datasets of
# one image size, reparameterisation and batch size change the computation, not the shapes of the
# learned optimizer's inputs. ``SwitchTask`` runs every configuration of one shape signature in
# one compiled program: the member to train is a runtime index (in the group's data, so that the
# unroll branches with a real ``lax.cond``, not a select over all members), batches are padded to
# the largest member's batch size and sliced back inside the member's branch. The member's
# arithmetic and random draws are those of the task alone, so a run over shared programs visits
# the same configurations, in the same order, as one program per configuration.


def support(family) -> list:
    """Every static configuration of ``family`` as a task (wrapper families included)."""
    if hasattr(family, "support"):
        return list(family.support())
    base = getattr(family, "base", None)
    if base is not None and hasattr(family, "low"):  # ReparamFamily: scales are array fields
        from tasks.augment import ReparamTask

        return [
            ReparamTask.create(t, jax.random.key(0), family.low, family.high) for t in support(base)
        ]
    raise TypeError(f"family {family.name}: cannot enumerate its static configurations")


def _batch_axis_free(shapes, batch_size: int):
    return jax.tree.map(
        lambda s: (None if s.shape[:1] == (batch_size,) else s.shape[:1], s.shape[1:], s.dtype),
        shapes,
    )


_KEY = jax.ShapeDtypeStruct((2,), np.uint32)  # a raw PRNG key, abstractly


def shape_signature(task, data) -> tuple:
    """What must be equal for two tasks to share a program: params (tree, shapes, dtypes, muP
    tags) and minibatches up to their leading batch axis."""
    key = _KEY
    params = common.param_shapes(task)
    batch = jax.eval_shape(lambda k: task.batch(k, data), key)
    leaves = lambda t: tuple(jax.tree.leaves(t))
    return (
        jax.tree.structure(params),
        leaves(jax.tree.map(lambda s: (s.shape, str(s.dtype)), params)),
        jax.tree.structure(batch),
        leaves(_batch_axis_free(batch, task.batch_size)),
        leaves(jax.tree.map(str, task.param_tags(), is_leaf=lambda x: x is None)),
    )


def _pad_batch(batch, size: int, batch_size: int):
    def pad(x):
        if x.shape[:1] != (batch_size,) or batch_size == size:
            return x
        return jnp.pad(x, [(0, size - batch_size)] + [(0, 0)] * (x.ndim - 1))

    return jax.tree.map(pad, batch)


def _unpad_batch(batch, size: int, batch_size: int):
    return jax.tree.map(lambda x: x[:batch_size] if x.shape[:1] == (size,) else x, batch)


def _member_loss(_, task, params, key, batch):
    """``task.loss`` of a batch padded to more rows than ``task.batch_size`` (sliced back)."""
    return task.loss(params, key, _unpad_batch(batch, _rows(batch), task.batch_size))


def _member_grad(j, task, params, key, batch):
    """``jax.value_and_grad`` of :func:`_member_loss` with respect to ``params``."""
    return jax.value_and_grad(_member_loss, argnums=2)(j, task, params, key, batch)


def _rows(batch) -> int:
    leaves = jax.tree.leaves(batch)
    return leaves[0].shape[0] if leaves else 0


def _unit_reparam(task):
    """``task`` as a :class:`tasks.augment.ReparamTask` with every scale 1: the same arithmetic
    (``u * 1 == u``, ``p / 1 == p`` exactly) in the form of its reparameterised twin."""
    from tasks.augment import ReparamTask

    shapes = common.param_shapes(task)
    return ReparamTask(task, jax.tree.map(lambda _: np.float32(1.0), shapes))


def _fingerprint(fn, *specs) -> tuple:
    """``fn``'s jaxpr at ``specs`` (printed) and its constants (bytes): equal fingerprints
    mean the same computation of the same inputs."""
    closed = jax.make_jaxpr(fn)(*specs)
    consts = [np.asarray(x) for x in closed.consts]
    return str(closed.jaxpr), tuple((str(x.dtype), x.shape, x.tobytes()) for x in consts)


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), tree)


_CLASSES: dict = {}  # (label, members' group keys, operand shapes, member keys) -> classes


def _no_member_args(j):
    return None, ()


def branch_classes(members, label, call, operands, member_args=None) -> tuple:
    """Members of one :class:`SwitchTask` for which ``call`` is one computation:
    ``((j, wrapped), ...)`` per class.

    ``call(j, task, *operands, *args_j)`` is what member ``j``'s branch computes (``label``
    names it and its static settings, for the cache); ``member_args(j) -> (key_j, args_j)`` adds
    member ``j``'s own arguments (e.g. its dataset) and a hashable ``key_j`` that must be equal
    within a class. A plain member whose reparameterised twin (a
    :class:`tasks.augment.ReparamTask` on the same static configuration) is a member too is taken
    in its twin's form (``wrapped``: unit scales; ``u * 1 == u`` and ``p / 1 == p`` exactly). Two
    members share a class when ``call`` traces to the same jaxpr with the same constants as a
    function of their array fields and the operands: e.g. one architecture on two datasets of one
    shape, a task whose static noise level only enters its batches, or a plain member and its
    reparameterised twin. So a class's branch runs exactly what each member's own branch would.
    Cached: tracing costs about 0.1 s per member.
    """
    from tasks.augment import ReparamTask

    member_args = member_args or _no_member_args
    operands = _abstract(operands)
    keys = tuple(member_args(j)[0] for j in range(len(members)))
    shapes = (jax.tree.structure(operands), tuple(map(str, jax.tree.leaves(operands))))
    cache_key = (label, tuple(m.group_key for m in members), shapes, keys)
    if cache_key in _CLASSES:
        return _CLASSES[cache_key]
    twins = {m.base.group_key for m in members if isinstance(m, ReparamTask)}
    classes: dict = {}
    for j, m in enumerate(members):
        wrapped = not isinstance(m, ReparamTask) and m.group_key in twins
        form = _unit_reparam(m) if wrapped else m
        leaves, treedef = jax.tree.flatten(form)
        args = _abstract(member_args(j)[1])
        fn = lambda ls, ops, a, j=j, td=treedef: call(j, jax.tree.unflatten(td, ls), *ops, *a)
        fingerprint = _fingerprint(fn, _abstract(leaves), operands, args)
        classes.setdefault((fingerprint, keys[j]), []).append((j, wrapped))
    _CLASSES[cache_key] = tuple(tuple(c) for c in classes.values())
    return _CLASSES[cache_key]


@struct.dataclass
class SwitchTask:
    """Tasks of one shape signature in one program; ``index`` picks the member (see above).

    ``members`` are the tasks (their array fields are this task's leaves); ``index`` (int32
    scalar) the member a pair trains, used where no data is at hand (``init``); ``batch`` and
    ``loss`` branch on the unbatched ``data["index"]``, which :meth:`data_for` sets equal to it.
    ``slots[j]`` is the entry of ``data["members"]`` holding member ``j``'s data.

    ``init``, ``batch``, ``loss`` and ``value_and_grad`` branch once per class of members for
    which they are one computation of the members' array fields (:func:`branch_classes`; for
    ``batch`` also on one dataset), run on the drawn member's array fields.
    """

    members: tuple
    index: Any
    slots: tuple = struct.field(pytree_node=False, default=())
    signature: Any = struct.field(pytree_node=False, default=None)

    @property
    def batch_size(self) -> int:
        return max(m.batch_size for m in self.members)

    @property
    def name(self) -> str:
        return f"switch_{len(self.members)}_{self.members[0].name}"

    @property
    def group_key(self) -> tuple:
        return ("SwitchTask", self.signature)

    def member_index(self, task) -> int:
        keys = [m.group_key for m in self.members]
        return keys.index(task.group_key)

    def _drawn(self, entries, pos, index):
        """The drawn member (``index``, traced) of class ``entries`` in the form of the class's
        first member, on its own array fields (the class's stacked, then indexed by ``pos``)."""
        forms = [_unit_reparam(self.members[j]) if w else self.members[j] for j, w in entries]
        if len(forms) == 1:
            return forms[0]
        treedef, leaves = jax.tree.structure(forms[0]), [jax.tree.leaves(f) for f in forms]
        at = jnp.asarray(pos)[index]
        stacked = [jnp.stack([jnp.asarray(x) for x in xs])[at] for xs in zip(*leaves, strict=True)]
        return jax.tree.unflatten(treedef, stacked)

    def _switch(self, classes, index, make_branch, *operands):
        """``lax.switch`` on member ``index``'s class; ``make_branch(entries, drawn)`` builds a
        class's branch, ``drawn(task)`` giving the drawn member of ``task`` (this task, or one
        with its structure; :meth:`_drawn`)."""
        cls, pos = np.zeros(len(self.members), np.int32), np.zeros(len(self.members), np.int32)
        for c, entries in enumerate(classes):
            for i, (j, _) in enumerate(entries):
                cls[j], pos[j] = c, i

        def drawn_of(entries):
            return lambda task: task._drawn(entries, pos, index)

        branches = [make_branch(e, drawn_of(e)) for e in classes]
        return jax.lax.switch(jnp.asarray(cls)[index], branches, *operands)

    def _dispatch(self, label, index, call, operands, member_args=None, classes_of=None):
        """``call(j, member index's task, *operands, *its args)`` with one branch per class of
        :func:`branch_classes` (``member_args`` as there) of ``classes_of`` (default ``call``:
        a call determined by another, e.g. a gradient by its loss, may share its classes)."""
        member_args = member_args or _no_member_args
        classes = branch_classes(self.members, label, classes_of or call, operands, member_args)

        def make_branch(entries, drawn):
            j0 = entries[0][0]
            return lambda *ops: call(j0, drawn(self), *ops, *member_args(j0)[1])

        return self._switch(classes, index, make_branch, *operands)

    def init(self, key):
        return self._dispatch("init", self.index, lambda _, t, k: t.init(k), (key,))

    def batch(self, key, data, split: str = "train", size: int | None = None):
        big = size or self.batch_size

        def call(_, t, k, d):
            b = size or t.batch_size
            return _pad_batch(t.batch(k, d, split, b), big, b)

        def member_args(j):  # the member's dataset (its slot: members on one dataset may merge)
            return self.slots[j], (data["members"][self.slots[j]],)

        label = ("batch", split, size)
        b = self._dispatch(label, data["index"], call, (key,), member_args)
        return {"index": data["index"], "batch": b}

    def loss(self, params, key, batch):
        return self._dispatch("loss", batch["index"], _member_loss, (params, key, batch["batch"]))

    def value_and_grad(self, params, key, batch):
        """``jax.value_and_grad`` of the drawn member's loss, differentiated inside its branch
        (differentiating through the switch would carry every branch's residuals); the branches
        are the loss's classes (equal losses have equal gradients)."""
        operands = (params, key, batch["batch"])
        index = batch["index"]
        return self._dispatch("loss", index, _member_grad, operands, classes_of=_member_loss)

    def population_value_and_grad(self, tasks, params, keys, batches, index):
        """:meth:`value_and_grad` of a whole population in one ``lax.switch``.

        ``self``: the program's task (unbatched); ``tasks``: the pairs' tasks of this program
        (leaves ``[P, ...]``); ``params`` ``[P, M, ...]`` (``M`` members per pair);
        ``keys`` ``[P, ...]`` and ``batches`` ``[P, ...]`` (``batch["batch"]``), one per pair;
        ``index``: the drawn member (unbatched: one per group). Returns ``(loss [P, M],
        grads [P, M, ...])``, what ``vmap(vmap(value_and_grad))`` gives. Each branch maps over
        pairs and members itself, so it is traced once; a switch inside the two ``vmap`` s is
        traced, then batched once per ``vmap`` (less tracing per program)."""
        member = lambda x: jax.ShapeDtypeStruct(np.shape(x)[2:], jnp.result_type(x))
        pair = lambda x: jax.ShapeDtypeStruct(np.shape(x)[1:], jnp.result_type(x))
        one = (jax.tree.map(member, params), pair(keys), jax.tree.map(pair, batches))
        classes = branch_classes(self.members, "loss", _member_loss, one, None)

        def make_branch(entries, drawn):
            j0 = entries[0][0]

            def one_pair(task, member_params, key, batch):
                t = drawn(task)
                return jax.vmap(lambda p: _member_grad(j0, t, p, key, batch))(member_params)

            return jax.vmap(one_pair)

        return self._switch(classes, index, make_branch, tasks, params, keys, batches)

    def normalizer(self, data) -> jax.Array:
        """The drawn member's ``loss_normalizer`` (float32 scalar)."""
        norms = np.asarray([m.loss_normalizer for m in self.members], np.float32)
        return jnp.asarray(norms)[data["index"]]

    @property
    def loss_normalizer(self) -> float:
        return float(self.members[0].loss_normalizer)

    def param_tags(self):
        return self.members[0].param_tags()


@dataclasses.dataclass(frozen=True)
class SwitchFamily:
    """``sample_arrays`` of a :class:`SwitchTask`: member ``j`` redrawn by its own family with
    the same key (what a program of that member alone draws)."""

    families: tuple

    name: str = "switch"

    def sample_arrays(self, key: jax.Array, task: SwitchTask) -> SwitchTask:
        members = tuple(
            f.sample_arrays(key, m) for f, m in zip(self.families, task.members, strict=True)
        )
        return task.replace(members=members)


class SharedPrograms:
    """Maps a zoo's tasks to the :class:`SwitchTask` of their shape signature (built lazily;
    ``load_data(task)`` returns a task's host data)."""

    def __init__(self, zoo: Zoo):
        self.zoo = zoo
        self._by_sig: dict | None = None
        self._sig_of: dict = {}

    def _build(self):
        groups: dict = {}
        for fam, _ in self.zoo.families:
            for t in support(fam):
                # array fields as zeros of their drawn shapes (episodes redraw them)
                drawn = jax.eval_shape(lambda k, t=t, f=fam: f.sample_arrays(k, t), _KEY)
                t = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), drawn)
                sig = shape_signature(t, t.load_data())
                self._sig_of[(fam, t.group_key)] = sig
                members = groups.setdefault(sig, {})
                members.setdefault((fam, t.group_key), t)
        self._by_sig = {}
        for sig, members in groups.items():
            fams = tuple(f for f, _ in members)
            tasks = tuple(members.values())
            datas, slots = [], []
            for t in tasks:
                d = t.load_data()
                ids = [j for j, e in enumerate(datas) if e is d]
                slots.append(ids[0] if ids else len(datas))
                if not ids:
                    datas.append(d)
            template = SwitchTask(tuple(tasks), np.int32(0), tuple(slots), sig)
            self._by_sig[sig] = (template, SwitchFamily(fams), tuple(datas))

    def lookup(self, family, task) -> tuple[SwitchTask, SwitchFamily, tuple, int]:
        """``(switch_task, switch_family, host_datas, index)`` running ``task`` of ``family``."""
        if self._by_sig is None:
            self._build()
        sig = self._sig_of[(family, task.group_key)]
        template, fam, datas = self._by_sig[sig]
        index = list(zip(fam.families, (m.group_key for m in template.members), strict=True))
        j = index.index((family, task.group_key))
        return template.replace(index=np.int32(j)), fam, datas, j

    def num_programs(self) -> int:
        if self._by_sig is None:
            self._build()
        return len(self._by_sig)
