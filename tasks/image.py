"""Image tasks: MLP classifiers, conv nets and MLP autoencoders on tfds image data or MNIST-1D.

Batches are ``{"image": uint8 [B, S, S, C] (or float32 [B, 40] for mnist1d), "label": int32
[B]}``; uint8 pixels become float32 in [0, 1] inside the compiled loss.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from tasks import common, models
from tasks.common import TaskBase, static

# Mean per-pixel variance of the training images in [0, 1] (= MSE of predicting every pixel's
# training mean): the autoencoder's trivial-predictor loss. Verified in tests/tasks against data.
PIXEL_VARIANCE = {
    ("mnist", 8): 0.0312,
    ("mnist", 16): 0.049,
    ("mnist", 28): 0.0673,
    ("fashion_mnist", 8): 0.0591,
    ("fashion_mnist", 16): 0.0712,
    ("fashion_mnist", 28): 0.087,
}


class _ImageTask(TaskBase):
    """Fields common to image tasks (not a dataclass itself: fields are declared below)."""

    def _input_dim(self) -> int:
        if self.dataset == "mnist1d":
            return common.IMAGE_DATASETS["mnist1d"]
        return self.image_size * self.image_size * self.channels

    def _short(self) -> str:
        ds = common.SHORT.get(self.dataset, self.dataset)
        return ds if self.dataset == "mnist1d" else f"{ds}{self.image_size}"

    def _suffix(self) -> str:
        s = "" if self.activation == "relu" else f"_{self.activation}"
        return s + ("" if self.batch_size == 128 else f"_b{self.batch_size}")

    def _validate_image(self):
        common.check_image_source(self.dataset, self.image_size)
        common.check_positive_int("channels", self.channels)
        common.check_positive_int("num_classes", self.num_classes)
        common.check_choice("activation", self.activation, common.ACTIVATIONS)

    def _flat(self, images: jax.Array) -> jax.Array:
        x = common.as_float_images(images)
        return x.reshape(x.shape[0], -1)


@struct.dataclass(kw_only=True)
class ImageMLPTask(_ImageTask):
    """Image classifier MLP: flatten -> depth x (Dense(width), act) -> Dense(num_classes).

    Cross-entropy loss; normaliser log(num_classes). ``mup=True`` gives the muP
    parameterisation (zero-init output layer, 1/width output multiplier).
    """

    dataset: str = static("mnist")
    image_size: int = static(8)
    channels: int = static(1)
    num_classes: int = static(10)
    width: int = static(32)
    depth: int = static(1)
    activation: str = static("relu")
    mup: bool = static(False)

    def validate(self):
        self._validate_image()
        common.check_positive_int("width", self.width)
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {self.depth!r}")

    @property
    def name(self) -> str:
        d = "" if self.depth == 1 else f"_d{self.depth}"
        mup = "_mup" if self.mup else ""
        return f"mlp_{self._short()}_w{self.width}{d}{mup}{self._suffix()}"

    @property
    def param_shape_key(self) -> tuple:
        # dataset, activation and batch size do not change the parameters' shapes
        shape = (self._input_dim(), self.num_classes, self.width, self.depth, self.mup)
        return (type(self).__name__, *shape)

    @property
    def model(self) -> models.MLP:
        return models.MLP((self.width,) * self.depth, self.num_classes, self.activation, self.mup)

    def init(self, key):
        params = self.model.init(key, jnp.zeros((1, self._input_dim())))["params"]
        return self.scale_init(params)

    def loss(self, params, key, batch):
        del key
        logits = self.model.apply({"params": params}, self._flat(batch["image"]))
        return common.softmax_xent(logits, batch["label"])

    @property
    def loss_normalizer(self) -> float:
        return math.log(self.num_classes)


@struct.dataclass(kw_only=True)
class ConvTask(_ImageTask):
    """Conv net classifier: k x (3x3 conv, stride 2, act) -> global mean pool -> Dense."""

    dataset: str = static("mnist")
    image_size: int = static(8)
    channels: int = static(1)
    num_classes: int = static(10)
    conv_channels: tuple = static((8, 16))
    activation: str = static("relu")

    def validate(self):
        self._validate_image()
        if self.dataset == "mnist1d":
            raise ValueError("dataset 'mnist1d' is 1-D; ConvTask needs a 2-D image dataset")
        if not isinstance(self.conv_channels, tuple) or not self.conv_channels:
            raise ValueError(f"conv_channels must be a non-empty tuple, got {self.conv_channels!r}")
        for c in self.conv_channels:
            common.check_positive_int("conv_channels", c)

    @property
    def name(self) -> str:
        c = "-".join(str(c) for c in self.conv_channels)
        return f"conv_{self._short()}_c{c}{self._suffix()}"

    @property
    def model(self) -> models.ConvNet:
        return models.ConvNet(self.conv_channels, self.num_classes, self.activation)

    def init(self, key):
        x = jnp.zeros((1, self.image_size, self.image_size, self.channels))
        return self.scale_init(self.model.init(key, x)["params"])

    def loss(self, params, key, batch):
        del key
        x = common.as_float_images(batch["image"])
        return common.softmax_xent(self.model.apply({"params": params}, x), batch["label"])

    @property
    def loss_normalizer(self) -> float:
        return math.log(self.num_classes)


@struct.dataclass(kw_only=True)
class AutoencoderTask(_ImageTask):
    """MLP autoencoder: x -> width -> bottleneck -> width -> sigmoid(D); loss mean((x' - x)^2).

    The normaliser is the mean per-pixel variance of the data (:data:`PIXEL_VARIANCE`), the
    loss of predicting each pixel's mean; for mnist1d (standardised, no sigmoid range) it is 1.
    """

    dataset: str = static("mnist")
    image_size: int = static(8)
    channels: int = static(1)
    num_classes: int = static(10)
    width: int = static(32)
    bottleneck: int = static(8)
    activation: str = static("relu")

    def validate(self):
        self._validate_image()
        if self.dataset == "mnist1d":
            raise ValueError("dataset 'mnist1d' is not in [0, 1]; AutoencoderTask needs images")
        common.check_positive_int("width", self.width)
        common.check_positive_int("bottleneck", self.bottleneck)

    @property
    def name(self) -> str:
        return f"ae_{self._short()}_w{self.width}_z{self.bottleneck}{self._suffix()}"

    @property
    def model(self) -> models.Autoencoder:
        return models.Autoencoder(self.width, self.bottleneck, self.activation)

    def init(self, key):
        params = self.model.init(key, jnp.zeros((1, self._input_dim())))["params"]
        return self.scale_init(params)

    def loss(self, params, key, batch):
        del key
        x = self._flat(batch["image"])
        recon = self.model.apply({"params": params}, x)
        return jnp.mean(jnp.square(recon - x))

    @property
    def loss_normalizer(self) -> float:
        return PIXEL_VARIANCE.get((self.dataset, self.image_size), 0.1)
