"""The reference backend: the NumPy spec kernels (edgecnn.reference.*) under the kernel names.

Every kernel writes into ``out`` and returns None; the Cython backend has the same names and
signatures (edgecnn/backends/cython.py) and must equal these bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..reference.add import add_s8
from ..reference.concat import concat_s8
from ..reference.conv import conv2d_s8
from ..reference.depthwise_conv import depthwise_conv2d_s8
from ..reference.fully_connected import fully_connected_s8
from ..reference.mean import mean_s8
from ..reference.params import AddParams, make_relu_params
from ..reference.pool import avg_pool_s8, max_pool_s8
from ..reference.quantize import (activation_lut, dequantize_s8, lut_s8, pad_s8, quantize_s8,
                                  relu_s8_params, requantize)
from ..reference.softmax import softmax_float_s8, softmax_s8

NAME = "reference"

__all__ = ["conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8", "max_pool_s8", "avg_pool_s8", "pad_s8",
           "requantize", "softmax_s8", "softmax_float_s8", "quantize_s8", "dequantize_s8", "relu_s8", "relu6_s8",
           "tanh_s8", "logistic_s8", "lut_s8", "relu_s8_params", "activation_lut", "add_s8",
           "bind_add_s8", "concat_s8", "mean_s8"]


def relu_s8(x: np.ndarray, s_in: float, zp_in: int, s_out: float, zp_out: int,
            out: np.ndarray) -> None:
    """Standalone int8 RELU as LiteRT computes it (rescale to the output quantization, clamp)."""
    relu_s8_params(x, make_relu_params(s_in, zp_in, s_out, zp_out, six=False), out)


def relu6_s8(x: np.ndarray, s_in: float, zp_in: int, s_out: float, zp_out: int,
             out: np.ndarray) -> None:
    relu_s8_params(x, make_relu_params(s_in, zp_in, s_out, zp_out, six=True), out)


def tanh_s8(x: np.ndarray, s_in: float, zp_in: int, out: np.ndarray) -> None:
    """int8 TANH; the output quantization is fixed by TFLite: scale 1/128, zero point 0."""
    lut_s8(x, activation_lut("tanh", s_in, zp_in, 1.0 / 128, 0), out)


def logistic_s8(x: np.ndarray, s_in: float, zp_in: int, out: np.ndarray) -> None:
    """int8 LOGISTIC; the output quantization is fixed by TFLite: scale 1/256, zero point -128."""
    lut_s8(x, activation_lut("logistic", s_in, zp_in, 1.0 / 256, -128), out)


def bind_add_s8(p: AddParams, shape1, shape2, out_shape=None):
    """The cython backend's bind_add_s8 under the same name: run(x1, x2, out)."""
    def run(x1, x2, out) -> None:
        add_s8(x1, x2, p, out)
    return run
