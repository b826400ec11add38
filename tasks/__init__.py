"""The task zoo: tasks, task families, datasets, meta-training zoos and evaluation suites.

    import tasks
    task = tasks.get("mlp_mnist8_w32")          # image MLP 8x8x1 -> 32 -> 10, 2,410 params
    data = jax.device_put(task.load_data())     # {"train": {...}, "test": {...}}
    params = task.init(key)
    loss = task.loss(params, key, task.batch(key, data))   # batch drawn inside jit
    zoo = tasks.zoo("quickstart"); family, task = zoo.sample_with_family(key)
    suite = tasks.suite("heldout")              # each task has .default_steps

See ``tasks/base.py`` for the contract.
"""

from tasks.augment import ReparamFamily, ReparamTask, SmallBatchFamily, with_batch_size
from tasks.base import Task, TaskFamily
from tasks.common import TaskBase, arch_key
from tasks.data import DatasetNotPreparedError
from tasks.family import GridFamily, Zoo
from tasks.image import AutoencoderTask, ConvTask, ImageMLPTask
from tasks.lm import CharLMTask
from tasks.registry import family_defaults, get, names, suite, suite_names, zoo, zoo_names
from tasks.synthetic import LinearRegressionTask, QuadraticTask


def load_data(task) -> dict:
    """Host numpy arrays ``{"train": {...}, "test": {...}}`` of ``task`` (cached per dataset)."""
    return task.load_data()


__all__ = [
    "AutoencoderTask",
    "CharLMTask",
    "ConvTask",
    "DatasetNotPreparedError",
    "GridFamily",
    "ImageMLPTask",
    "LinearRegressionTask",
    "QuadraticTask",
    "ReparamFamily",
    "ReparamTask",
    "SmallBatchFamily",
    "Task",
    "TaskBase",
    "TaskFamily",
    "Zoo",
    "arch_key",
    "family_defaults",
    "get",
    "load_data",
    "names",
    "suite",
    "suite_names",
    "with_batch_size",
    "zoo",
    "zoo_names",
]
