"""Float32 twins of the int8 ops (``*_f32``), batched: activations are (N, H, W, C).

These run the float graph for calibration and for the float baseline. Convolution is
im2col through a strided view plus one BLAS matmul per batch; padding is zeros (real 0.0),
pools skip out-of-image taps (max) and divide by the number of valid taps (avg), exactly as
TFLite's float kernels do.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _windows(x: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """A (N, OH, OW, KH, KW, C) read-only view of the sliding windows of padded x."""
    n, _, _, c = x.shape
    sn, sh, sw, sc = x.strides
    return as_strided(
        x, shape=(n, oh, ow, kh, kw, c),
        strides=(sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False)


def _out_size(size, k, s, pb, pa, d):
    return (size + pb + pa - d * (k - 1) - 1) // s + 1


def conv2d_f32(x, weight, bias, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    """x (N,H,W,Cin) float32, weight OHWI, bias (O,) or None -> (N,OH,OW,O)."""
    t, b, l, r = padding
    o, kh, kw, c_in = weight.shape
    n, h, w, _ = x.shape
    oh = _out_size(h, kh, stride[0], t, b, dilation[0])
    ow = _out_size(w, kw, stride[1], l, r, dilation[1])
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0))) if any(padding) else x
    cols = _windows(np.ascontiguousarray(xp, np.float32), kh, kw, stride, dilation, oh, ow)
    cols = cols.reshape(n * oh * ow, kh * kw * c_in)
    y = cols @ weight.reshape(o, kh * kw * c_in).T.astype(np.float32)
    if bias is not None:
        y += bias.astype(np.float32)
    return y.reshape(n, oh, ow, o)


def depthwise_conv2d_f32(x, weight, bias, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                        depth_multiplier=1):
    """x (N,H,W,C) float32, weight (KH,KW,C*M), bias (C*M,) or None -> (N,OH,OW,C*M).

    Output channel oc = ic * M + m reads input channel ic; one multiply-add per tap in
    float32, taps in (ky, kx) order, zeros as padding (TFLite's reference float kernel).
    """
    t, b, l, r = padding
    kh, kw, cm = weight.shape
    n, h, w, c = x.shape
    if cm != c * depth_multiplier:
        raise ValueError(f"depthwise weight has {cm} channels; input {c} x depth multiplier "
                         f"{depth_multiplier} = {c * depth_multiplier}")
    oh = _out_size(h, kh, stride[0], t, b, dilation[0])
    ow = _out_size(w, kw, stride[1], l, r, dilation[1])
    xp = np.pad(x.astype(np.float32), ((0, 0), (t, b), (l, r), (0, 0)))
    xp = np.repeat(xp, depth_multiplier, axis=3)  # channel oc holds input channel oc // M
    y = np.zeros((n, oh, ow, cm), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            y += xp[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0],
                    x0:x0 + (ow - 1) * stride[1] + 1:stride[1]] * weight[ky, kx].astype(np.float32)
    if bias is not None:
        y += bias.astype(np.float32)
    return y


def _pool_windows(x, kernel, stride, padding, fill):
    t, b, l, r = padding
    n, h, w, c = x.shape
    oh = _out_size(h, kernel[0], stride[0], t, b, 1)
    ow = _out_size(w, kernel[1], stride[1], l, r, 1)
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill) if any(padding) else x
    return _windows(np.ascontiguousarray(xp), kernel[0], kernel[1], stride, (1, 1), oh, ow)


def max_pool_f32(x, kernel, stride, padding=(0, 0, 0, 0)):
    """Max over each window; padded taps are -inf, i.e. skipped."""
    return _pool_windows(x.astype(np.float32), kernel, stride, padding, -np.inf).max(axis=(3, 4))


def avg_pool_f32(x, kernel, stride, padding=(0, 0, 0, 0)):
    """Mean over the valid (in-image) taps of each window."""
    sums = _pool_windows(x.astype(np.float32), kernel, stride, padding, 0.0).sum(axis=(3, 4))
    ones = np.ones((1,) + x.shape[1:3] + (1,), np.float32)
    counts = _pool_windows(ones, kernel, stride, padding, 0.0).sum(axis=(3, 4))
    return sums / counts


def fully_connected_f32(x, weight, bias):
    """x (N, ...) flattened row-major (NHWC), weight (O, I) -> (N, O)."""
    y = x.reshape(x.shape[0], -1).astype(np.float32) @ weight.T.astype(np.float32)
    return y + bias.astype(np.float32) if bias is not None else y


def batchnorm_f32(x, gamma, beta, mean, var, eps):
    k = gamma / np.sqrt(var.astype(np.float64) + eps)
    return ((x - mean) * k + beta).astype(np.float32)


def activation_f32(x, kind):
    if kind == "none":
        return x
    if kind == "relu":
        return np.maximum(x, 0.0)
    if kind == "relu6":
        return np.clip(x, 0.0, 6.0)
    if kind == "tanh":
        return np.tanh(x)
    if kind == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88 gives 0, the right limit
            return 1.0 / (1.0 + np.exp(-x))
    raise ValueError(f"unknown activation {kind!r}")


def softmax_f32(x, beta=1.0):
    z = (x - x.max(axis=-1, keepdims=True)) * beta
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def add_f32(a, b):
    """ADD with NumPy broadcasting (LiteRT's float ADD broadcasts the same way)."""
    return (np.asarray(a, np.float32) + np.asarray(b, np.float32)).astype(np.float32)


def concat_f32(xs, axis):
    return np.concatenate([np.asarray(x, np.float32) for x in xs], axis=axis)


def mean_f32(x, axes, keep_dims):
    """MEAN over ``axes`` (negative or repeated as LiteRT allows), summed in float64 and
    rounded once to float32."""
    x = np.asarray(x, np.float32)
    axes = tuple(sorted({int(a) % x.ndim for a in np.atleast_1d(axes)}))
    return np.mean(x, axis=axes, keepdims=bool(keep_dims),
                   dtype=np.float64).astype(np.float32)
