"""The aten ops the TorchScript reader knows: each either adds graph nodes (through the
builder, PyTorch conventions) or folds constants. Signatures follow the aten schemas
(``torch.max_pool2d(self, kernel_size, stride=[], padding=[0, 0], dilation=[1, 1],
ceil_mode=False)``), so serialized code with positional or keyword arguments binds alike.

Every handler takes the interpreter first (``it``: the builder ``it.b``, node naming
``it.name(op)``, refusals ``it.refuse(...)``). Arithmetic and list operations on constants,
and TorchScript's builtins, are in ``torchscript_consts.py``.
"""

from __future__ import annotations

import math

import numpy as np

from .torchscript_consts import CONSTANT_OPS, _fold, is_act

INF = float("inf")


def _act(it, x, op):
    if not is_act(x):
        it.refuse(f"torch.{op} of a {type(x).__name__}; edgecnn converts ops on the "
                  "model's activations (its input and what is computed from it)")
    return x


def _const(it, w, op, what="weight"):
    if not isinstance(w, np.ndarray):
        it.refuse(f"torch.{op} with a {what} that is a {type(w).__name__}, not a constant tensor")
    return w


def _ints(it, v, op, what):
    v = [v] if isinstance(v, int) else v
    if not isinstance(v, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in v):
        it.refuse(f"torch.{op}: {what} {v!r} is not a list of ints")
    return list(v)


def _hw(it, v, op, what):
    v = _ints(it, v, op, what)
    if len(v) == 1:
        v = v * 2
    if len(v) != 2:
        it.refuse(f"torch.{op}: {what} {v} is not 2-D")
    return tuple(v)


# ---- convolution and dense ---------------------------------------------------------------

def _conv(it, op, x, w, b, stride, padding, dilation, groups):
    _act(it, x, op)
    w = _const(it, w, op)
    if b is not None:
        b = _const(it, b, op, "bias")
    stride, dilation = _hw(it, stride, op, "stride"), _hw(it, dilation, op, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0, 0, 0)
        elif padding == "same" and stride == (1, 1) and w.ndim == 4:
            pads = []
            for k, d in zip(w.shape[2:], dilation):  # PyTorch: the odd pixel goes after
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            padding = tuple(pads)
        else:
            it.refuse(f"torch.{op}: padding {padding!r}")
    else:
        padding = _hw(it, padding, op, "padding")
    if isinstance(groups, bool) or not isinstance(groups, int):
        it.refuse(f"torch.{op}: groups {groups!r}")
    return it.b.conv(it.name(op), x, w, b, stride, padding, dilation, groups)


def _convolution(it, input, weight, bias, stride, padding, dilation, transposed,
                 output_padding, groups, benchmark=False, deterministic=False,
                 cudnn_enabled=True, allow_tf32=True):
    if transposed:
        it.refuse("transposed convolution is not supported")
    return _conv(it, "_convolution", input, weight, bias, stride, padding, dilation, groups)


def _convolution_mode(it, input, weight, bias, stride, padding, dilation, groups):
    return _conv(it, "_convolution_mode", input, weight, bias, stride, padding, dilation, groups)


def _conv2d(it, input, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
            groups=1):
    return _conv(it, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def _linear(it, input, weight, bias=None):
    _act(it, input, "linear")
    b = None if bias is None else _const(it, bias, "linear", "bias")
    return it.b.linear(it.name("linear"), input, _const(it, weight, "linear"), b)


def _addmm(it, self, mat1, mat2, beta=1, alpha=1):
    _act(it, mat1, "addmm")
    w = _const(it, mat2, "addmm", "mat2")
    b = _const(it, self, "addmm", "bias")
    if w.ndim != 2:
        it.refuse("torch.addmm with a weight that is not 2-D")
    return it.b.linear(it.name("addmm"), mat1, (w * alpha).T, b * beta)


def _matmul(it, self, other):
    _act(it, self, "matmul")
    w = _const(it, other, "matmul", "right operand")
    if w.ndim != 2:
        it.refuse("torch.matmul by a constant that is not 2-D")
    return it.b.linear(it.name("matmul"), self, w.T, None)


def _t(it, self):
    w = _const(it, self, "t", "operand")
    if w.ndim > 2:
        it.refuse("torch.t of a tensor with more than 2 dims")
    return w.T


def _batch_norm(it, input, weight, bias, running_mean, running_var, training, momentum, eps,
                cudnn_enabled=True):
    _act(it, input, "batch_norm")
    if training:
        it.refuse("batch_norm in training mode (batch statistics); call model.eval() before "
                  "torch.jit.trace/script and save again")
    if running_mean is None or running_var is None:
        it.refuse("batch_norm without running statistics")
    n = np.shape(running_mean)[0] if np.ndim(running_mean) == 1 else -1
    gamma = np.ones(n, np.float32) if weight is None else _const(it, weight, "batch_norm")
    beta = np.zeros(n, np.float32) if bias is None else _const(it, bias, "batch_norm")
    return it.b.batchnorm(it.name("batch_norm"), input, gamma, beta,
                          _const(it, running_mean, "batch_norm"),
                          _const(it, running_var, "batch_norm"), eps)


# ---- activations -------------------------------------------------------------------------

def _activation(kind):
    def handler(it, self, *rest):
        return it.b.activation(it.name(kind), _act(it, self, kind), kind)
    return handler


def _clamp_kind(it, op, lo, hi):
    lo = None if lo is None else float(lo)
    hi = None if hi is None or float(hi) == INF else float(hi)
    if lo == 0.0 and hi == 6.0:
        return "relu6"
    if lo == 0.0 and hi is None:
        return "relu"
    it.refuse(f"torch.{op} to [{lo}, {hi}]; only [0, 6] (ReLU6) and [0, inf) (ReLU) are "
              "supported")


def _hardtanh(it, self, min_val=-1.0, max_val=1.0):
    kind = _clamp_kind(it, "hardtanh", min_val, max_val)
    return it.b.activation(it.name(kind), _act(it, self, "hardtanh"), kind)


def _clamp(it, self, min=None, max=None):
    kind = _clamp_kind(it, "clamp", min, max)
    return it.b.activation(it.name(kind), _act(it, self, "clamp"), kind)


# ---- pooling and shapes ------------------------------------------------------------------

def _max_pool2d(it, self, kernel_size, stride=(), padding=(0, 0), dilation=(1, 1),
                ceil_mode=False):
    _act(it, self, "max_pool2d")
    stride = _hw(it, stride, "max_pool2d", "stride") if stride else None
    return it.b.pool(it.name("max_pool2d"), self, "max",
                     _hw(it, kernel_size, "max_pool2d", "kernel_size"), stride,
                     _hw(it, padding, "max_pool2d", "padding"), bool(ceil_mode), True,
                     _hw(it, dilation, "max_pool2d", "dilation"))


def _avg_pool2d(it, self, kernel_size, stride=(), padding=(0, 0), ceil_mode=False,
                count_include_pad=True, divisor_override=None):
    _act(it, self, "avg_pool2d")
    if divisor_override is not None:
        it.refuse("avg_pool2d with divisor_override")
    stride = _hw(it, stride, "avg_pool2d", "stride") if stride else None
    return it.b.pool(it.name("avg_pool2d"), self, "avg",
                     _hw(it, kernel_size, "avg_pool2d", "kernel_size"), stride,
                     _hw(it, padding, "avg_pool2d", "padding"), bool(ceil_mode),
                     bool(count_include_pad))


def _adaptive_avg_pool2d(it, self, output_size):
    _act(it, self, "adaptive_avg_pool2d")
    return it.b.adaptive_avgpool(it.name("adaptive_avg_pool2d"), self,
                                 _hw(it, output_size, "adaptive_avg_pool2d", "output_size"))


def _mean(it, self, dim=None, keepdim=False, dtype=None):
    _act(it, self, "mean")
    rank = len(self.shape)
    dims = None if dim is None else _ints(it, dim, "mean", "dim")
    if rank != 4 or dims is None or sorted(d % 4 for d in dims if -4 <= d < 4) != [2, 3] \
            or len(dims) != 2:
        it.refuse(f"torch.mean over dims {dims} of a rank-{rank} tensor; edgecnn runs the mean "
                  "over H and W (dims [2, 3]) of an NCHW tensor")
    return it.b.global_mean(it.name("mean"), self, bool(keepdim))


def _flatten(it, self, start_dim=0, end_dim=-1):
    _act(it, self, "flatten")
    rank = len(self.shape)
    if start_dim % rank != 1 or end_dim % rank != rank - 1:
        it.refuse(f"torch.flatten(start_dim={start_dim}, end_dim={end_dim}) of a rank-{rank} "
                  "tensor; only flattening everything after the batch is supported")
    return it.b.flatten(it.name("flatten"), self)


def _view(op):
    def handler(it, self, size):
        _act(it, self, op)
        target = _ints(it, size, op, "shape")
        n = math.prod(self.torch_shape)
        if target.count(-1) > 1 or any(d < -1 for d in target):
            it.refuse(f"torch.{op} to {target}")
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            if known <= 0 or n % known:
                it.refuse(f"torch.{op} of {self.torch_shape} to {target}")
            target[target.index(-1)] = n // known
        return it.b.reshape(it.name(op), self, target)
    return handler


def _cat(it, tensors, dim=0):
    if not isinstance(tensors, (list, tuple)) or not all(is_act(t) for t in tensors):
        it.refuse("torch.cat of something other than a list of activations")
    return it.b.concat(it.name("cat"), list(tensors), dim)


def _softmax(it, self, dim, dtype=None):
    return it.b.softmax(it.name("softmax"), _act(it, self, "softmax"), dim)


def _dropout(op):
    def handler(it, input, p=0.5, train=False):
        if train:
            it.refuse(f"{op} in training mode; call model.eval() before torch.jit.trace")
        return input
    return handler


def _identity_op(it, self, *args, **kwargs):
    return self


# ---- arithmetic: activations (ADD) or constants ------------------------------------------

def _add(it, self, other, alpha=1):
    if is_act(self) and is_act(other):
        if alpha != 1:
            it.refuse("torch.add with alpha != 1 on activations")
        return it.b.add_tensors(it.name("add"), self, other)
    if isinstance(self, str) and isinstance(other, str):
        return self + other
    return _fold(it, "add", lambda a, b: a + alpha * b, self, other)



ATEN = {
    "_convolution": _convolution, "_convolution_mode": _convolution_mode, "conv2d": _conv2d,
    "linear": _linear, "addmm": _addmm, "matmul": _matmul, "t": _t,
    "batch_norm": _batch_norm,
    "relu": _activation("relu"), "relu_": _activation("relu"),
    "relu6": _activation("relu6"), "relu6_": _activation("relu6"),
    "sigmoid": _activation("sigmoid"), "sigmoid_": _activation("sigmoid"),
    "tanh": _activation("tanh"), "tanh_": _activation("tanh"),
    "hardtanh": _hardtanh, "hardtanh_": _hardtanh,
    "clamp": _clamp, "clamp_": _clamp, "clip": _clamp, "clip_": _clamp,
    "max_pool2d": _max_pool2d, "avg_pool2d": _avg_pool2d,
    "adaptive_avg_pool2d": _adaptive_avg_pool2d, "mean": _mean,
    "flatten": _flatten, "view": _view("view"), "reshape": _view("reshape"),
    "cat": _cat, "concat": _cat, "softmax": _softmax,
    "dropout": _dropout("dropout"), "dropout_": _dropout("dropout"),
    "feature_dropout": _dropout("feature_dropout"),
    "feature_dropout_": _dropout("feature_dropout"),
    "alpha_dropout": _dropout("alpha_dropout"),
    "contiguous": _identity_op, "detach": _identity_op, "clone": _identity_op,
    "to": _identity_op,
    "add": _add, "add_": _add,
    **CONSTANT_OPS,
}
