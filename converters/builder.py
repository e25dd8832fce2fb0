"""Build a float IR graph from PyTorch-convention ops, one node at a time.

Every importer (pickled modules and their templates, --arch specs, TorchScript, ONNX) speaks
PyTorch's conventions: NCHW activations, OIHW conv weights, dense weights (out, in) over a
C,H,W flatten, ``dim`` arguments into NCHW. ``GraphBuilder`` is the one place where those
become edgecnn's NHWC graph:

- conv weights OIHW -> OHWI; ``groups == C_in`` (each input channel with its own filters)
  becomes a DEPTHWISE_CONV_2D (weights [1, KH, KW, C*M]: output channel c*M + m reads input
  channel c, which is PyTorch's grouping too); ``1 < groups < C_in`` becomes one dense
  CONV_2D with block-diagonal weights (zeros between groups: exact in float and in int8, since
  a zero weight adds zero to the int32 accumulator, and every TFLite runtime runs it);
- a flatten of a (1, H, W, C) map with H*W > 1 and C > 1 is a RESHAPE in NHWC order, so the
  2-D tensor it makes carries ``chw_from``: its elements are a permutation of PyTorch's. Only
  a dense layer may read it (its columns are permuted once, here); element-wise ops pass the
  mark on; anything else refuses, since its output would be in the wrong order;
- ``dim`` arguments map NCHW -> NHWC.

Each node's output shape is computed as it is added (``out_shape`` on the inputs' shapes), so
building is linear in the node count and each error names its node. ``finish`` runs the
checks in ``checks.py`` (the memory the conversion needs against ``max_memory``, BatchNorm
folds that overflow float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from edgecnn import ir, ops, shapes
from edgecnn.errors import ArchitectureError, ModelFormatError, UnsupportedOpError
from edgecnn.ops.conv2d import block_diagonal

NHWC_AXIS = (0, 3, 1, 2)  # PyTorch dim of a 4-D tensor -> NHWC axis
MAX_NAME = 200
MAX_NODES = 1 << 17  # ResNet-152 has about 500 nodes; a loop in hostile code may add millions


class GeometryError(ArchitectureError):
    """A layer does not fit the input size: a window larger than its input, or a dense layer
    whose in_features differ from the flattened map (``need``/``got``). Importers that guess
    the input size try others on this error only."""

    def __init__(self, message, need=None, got=None):
        super().__init__(message)
        self.need, self.got = need, got


@dataclass(frozen=True)
class Value:
    """An activation while a graph is built: the graph tensor's name and NHWC shape.

    ``chw_from`` marks a 2-D tensor flattened from the (1, H, W, C) map it names in NHWC
    order where PyTorch flattens C, H, W."""

    name: str
    shape: tuple
    chw_from: Optional[tuple] = None

    @property
    def torch_shape(self) -> tuple:
        """The shape PyTorch sees: NCHW for a 4-D tensor."""
        s = self.shape
        return (s[0], s[3], s[1], s[2]) if len(s) == 4 else s


def padding4(v, what: str = "padding") -> tuple:
    """(top, bottom, left, right) from one int, an (h, w) pair, or four explicit values."""
    if isinstance(v, (list, tuple)) and len(v) == 4:
        return tuple(int(p) for p in v)
    h, w = pair(v, what)
    return (h, h, w, w)


def pair(v, what: str = "value") -> tuple:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        if len(v) != 2:
            raise ArchitectureError(f"expected a {what} of one or two integers, got {list(v)}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def torch_dim(dim: int, rank: int, where: str) -> int:
    """A PyTorch dim (possibly negative) of a rank-``rank`` tensor -> its NHWC axis."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -rank <= dim < rank:
        raise ArchitectureError(f"{where}: dim {dim!r} is out of range for a rank-{rank} tensor")
    dim = int(dim) % rank
    return NHWC_AXIS[dim] if rank == 4 else dim


class GraphBuilder:
    def __init__(self, input_hwc, *, source: str = "model", max_memory: Optional[int] = None,
                 input_name: str = "input"):
        h, w, c = (int(v) for v in input_hwc)
        if min(h, w, c) < 1:
            raise ArchitectureError(f"{source}: input {h}x{w}x{c} must be at least 1x1x1")
        self.source, self.max_memory = source, max_memory
        self.input = ir.Tensor(input_name, (1, h, w, c), "float32")
        self.nodes: list = []
        self.names = {input_name}
        self.suffix: dict = {}  # name -> the last k of name#k handed out
        self.weight_bytes = 0
        self.scratch = 0  # largest im2col buffer of one image, in floats
        self.nonnegative: set = set()  # tensors >= 0 by construction (ReLU, and pools of them)

    # ---- plumbing -------------------------------------------------------------------------
    def input_value(self) -> Value:
        return Value(self.input.name, self.input.shape)

    def unique(self, name: str) -> str:
        """``name``, or ``name#k`` with the next free k (a counter per name: linear time)."""
        base = (str(name) or "node")[:MAX_NAME]
        name = base
        while name in self.names:
            self.suffix[base] = self.suffix.get(base, 0) + 1
            name = f"{base}#{self.suffix[base]}"
        self.names.add(name)
        return name

    def add(self, node, inputs, chw_from=None) -> Value:
        """Append ``node`` reading ``inputs`` (Values); its output shape is computed now."""
        if len(self.nodes) >= MAX_NODES:
            raise ModelFormatError(f"{self.source}: the model has more than {MAX_NODES} layers; "
                                   "not a model edgecnn converts")
        name = self.unique(node.name)
        node = ir.replace(node, name=name, inputs=tuple(v.name for v in inputs),
                          output=ir.Tensor(name, node.output.shape if node.output else (),
                                           "float32"))
        try:
            shape = tuple(int(d) for d in node.out_shape([v.shape for v in inputs]))
        except ArchitectureError as e:
            if node.window is not None and "does not fit" in str(e):
                raise GeometryError(str(e)) from None
            raise
        except (ValueError, OverflowError, ZeroDivisionError) as e:
            raise ArchitectureError(f"{name}: {e}") from None
        node = ir.replace(node, output=ir.replace(node.output, shape=shape))
        for key in ("weight", "bias", "gamma", "beta", "mean", "var"):
            arr = getattr(node, key, None)
            if isinstance(arr, np.ndarray):
                self.weight_bytes += arr.nbytes
        self.nodes.append(node)
        return Value(name, shape, chw_from)

    def _plain(self, x: Value, what: str, name: str) -> None:
        if x.chw_from is not None:
            raise UnsupportedOpError(
                f"{name}: {what} reads a flattened feature map, whose elements edgecnn (NHWC) "
                "orders H,W,C where PyTorch orders C,H,W; only a dense layer may read it")

    def _image(self, x: Value, name: str, what: str) -> None:
        if len(x.shape) != 4:
            raise ArchitectureError(f"{name}: {what} needs an NCHW image tensor, got shape "
                                    f"{x.torch_shape}")

    # ---- ops ------------------------------------------------------------------------------
    def conv(self, name, x: Value, weight, bias=None, stride=1, padding=0, dilation=1,
             groups=1) -> Value:
        self._image(x, name, "a 2-D convolution")
        w = np.asarray(weight)
        if w.ndim != 4 or w.dtype.kind != "f" or min(w.shape) < 1:
            raise ArchitectureError(f"{name}: conv weight of shape {tuple(w.shape)} and type "
                                    f"{w.dtype}; expected float OIHW with every dimension >= 1")
        c_in, groups = x.shape[3], int(groups)
        o, i_g = w.shape[:2]
        if groups < 1 or c_in % groups or o % groups or i_g * groups != c_in:
            raise ArchitectureError(
                f"{name}: weight shape {tuple(w.shape)} (OIHW) with groups={groups} expects "
                f"{i_g * max(groups, 1)} input channels but its input has {c_in}")
        b = self._bias(name, bias, o)
        kwargs = dict(stride=pair(stride, "stride"), padding=padding4(padding),
                      dilation=pair(dilation, "dilation"))
        if groups > 1 and groups == c_in:  # depthwise, depth multiplier o // c_in
            wd = np.ascontiguousarray(w.transpose(1, 2, 3, 0), np.float32)  # (1, KH, KW, O)
            return self.add(ops.DepthwiseConv2D(name, wd, b, **kwargs), [x])
        wt = np.ascontiguousarray(w.transpose(0, 2, 3, 1), np.float32)  # OHWI
        if groups > 1:
            wt = self._block_diagonal(name, wt, groups)
        out = self.add(ops.Conv2D(name, wt, b, **kwargs), [x])
        _, oh, ow, _ = out.shape
        self.scratch = max(self.scratch, oh * ow * wt.shape[1] * wt.shape[2] * wt.shape[3])
        return out

    def _block_diagonal(self, name, w, groups):
        """OHWI grouped weights as one dense CONV_2D's (ops.conv2d.block_diagonal)."""
        o, kh, kw, i_g = w.shape
        full_bytes = o * i_g * groups * kh * kw * 4
        if self.max_memory is not None and full_bytes > self.max_memory:
            raise ModelFormatError(f"{self.source}: {name}: grouped conv expanded to dense "
                                   f"weights would need {full_bytes} bytes, over --max-memory "
                                   f"{self.max_memory}")
        return block_diagonal(w, groups)

    def _bias(self, name, bias, n):
        if bias is None:
            return None
        b = np.asarray(bias)
        if b.dtype.kind != "f" or b.shape != (n,):
            raise ArchitectureError(f"{name}: bias of shape {tuple(b.shape)} and type {b.dtype} "
                                    f"for a layer with {n} outputs; expected float ({n},)")
        return np.ascontiguousarray(b, np.float32)

    def linear(self, name, x: Value, weight, bias=None) -> Value:
        w = np.asarray(weight)
        if w.ndim != 2 or w.dtype.kind != "f" or min(w.shape) < 1:
            raise ArchitectureError(f"{name}: dense weight of shape {tuple(w.shape)} and type "
                                    f"{w.dtype}; expected float (out, in)")
        if len(x.shape) != 2:
            raise ArchitectureError(f"{name}: a dense layer reads a flattened (N, features) "
                                    f"tensor, got shape {x.torch_shape}; flatten it first")
        if w.shape[1] != x.shape[1]:
            src = x.chw_from
            what = f" ({src[3]}x{src[1]}x{src[2]} flattened)" if src else ""
            raise GeometryError(f"{name}: weight shape {tuple(w.shape)} expects {w.shape[1]} "
                                f"inputs but its input has {x.shape[1]}{what}", w.shape[1],
                                x.shape[1])
        if x.chw_from is not None:  # PyTorch flattened C,H,W; the graph flattens H,W,C
            _, h, wd, c = x.chw_from
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        return self.add(ops.FullyConnected(name, np.ascontiguousarray(w, np.float32),
                                           self._bias(name, bias, w.shape[0])), [x])

    def batchnorm(self, name, x: Value, gamma, beta, mean, var, eps) -> Value:
        self._plain(x, "BatchNorm", name)
        c = x.shape[-1]
        arrays = []
        for key, arr in (("weight", gamma), ("bias", beta), ("running_mean", mean),
                         ("running_var", var)):
            a = np.asarray(arr)
            if a.dtype.kind != "f" or a.shape != (c,):
                raise ArchitectureError(f"{name}: BatchNorm {key} of shape {tuple(a.shape)} "
                                        f"for {c} channels")
            arrays.append(np.asarray(a, np.float32))
        eps = float(eps)
        with np.errstate(all="ignore"):
            bad_var = not np.all(arrays[3] + eps > 0)  # NaN fails too
        if not (math.isfinite(eps) and eps >= 0) or bad_var:
            raise ArchitectureError(f"{name}: BatchNorm variance + eps must be positive "
                                    f"(eps {eps})")
        return self.add(ops.BatchNorm(name, *arrays, eps=eps), [x])

    def activation(self, name, x: Value, kind: str) -> Value:
        out = self.add(ops.Activation(name, kind), [x], x.chw_from)
        if kind in ("relu", "relu6", "sigmoid"):
            self.nonnegative.add(out.name)
        return out

    def _window_checks(self, name, x, kernel, stride, padding):
        self._image(x, name, "pooling")
        if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
            raise ArchitectureError(f"{name}: kernel {kernel} and stride {stride} must be 1 or "
                                    f"more and padding {padding} 0 or more")

    def pool(self, name, x: Value, kind, kernel, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, dilation=1) -> Value:
        """PyTorch's MaxPool2d / AvgPool2d (stride None or empty: the kernel)."""
        kernel = pair(kernel, "kernel_size")
        stride = pair(stride if stride not in (None, (), []) else kernel, "stride")
        padding = padding4(padding)
        self._window_checks(name, x, kernel, stride, padding)
        if pair(dilation, "dilation") != (1, 1):
            raise UnsupportedOpError(f"{name}: dilated pooling is not supported")
        if ceil_mode:
            t, b, l, r = padding
            b += ceil_extra(x.shape[1], kernel[0], stride[0], t, b)
            r += ceil_extra(x.shape[2], kernel[1], stride[1], l, r)
            padding = (t, b, l, r)
        if kind == "max":
            return self._max_pool(name, x, kernel, stride, padding)
        if any(padding) and count_include_pad:
            raise UnsupportedOpError(
                f"{name}: average pooling with padding and count_include_pad=True divides by "
                "padded taps, which TFLite's AVERAGE_POOL_2D cannot express; use "
                "count_include_pad=False")
        return self.add(ops.AvgPool2D(name, kernel, stride, padding), [x])

    def _max_pool(self, name, x, kernel, stride, padding) -> Value:
        """A max pool; padding TFLite cannot express (neither SAME nor VALID, e.g. ResNet's
        3x3/2 pad 1 on an even size) becomes PAD + a VALID pool where the input is >= 0 (after
        a ReLU): a padded 0 is then never above the window's in-image maximum, so the max is
        unchanged, in float and in int8 (PAD writes the zero point, real 0)."""
        kind = shapes.padding_kind(x.shape[1:3], kernel, stride, padding)
        if kind == "explicit" and x.name in self.nonnegative:
            x = self.add(ops.Pad(f"{name}/pad", tuple(padding)), [x])
            self.nonnegative.add(x.name)
            padding = (0, 0, 0, 0)
        out = self.add(ops.MaxPool2D(name, kernel, stride, padding), [x])
        if x.name in self.nonnegative:
            self.nonnegative.add(out.name)
        return out

    def pad(self, name, x: Value, padding) -> Value:
        """Zero padding of H and W: (top, bottom, left, right)."""
        self._image(x, name, "padding")
        out = self.add(ops.Pad(name, tuple(int(p) for p in padding)), [x])
        if x.name in self.nonnegative:
            self.nonnegative.add(out.name)
        return out

    def adaptive_avgpool(self, name, x: Value, output) -> Value:
        self._image(x, name, "adaptive average pooling")
        oh, ow = pair(output, "output_size")
        h, w = x.shape[1:3]
        if (h, w) == (oh, ow):
            return x
        if (oh, ow) == (1, 1):
            return self.global_mean(name, x, keepdims=True)
        if oh < 1 or ow < 1 or h % oh or w % ow:
            raise UnsupportedOpError(
                f"{name}: adaptive average pooling from {h}x{w} to {oh}x{ow} has uneven windows; "
                "choose an input size whose feature map is a multiple of the output size")
        return self.add(ops.AvgPool2D(name, (h // oh, w // ow), (h // oh, w // ow)), [x])

    def global_mean(self, name, x: Value, keepdims: bool) -> Value:
        """The mean over H and W (MEAN, as TensorFlow's converter writes a global pool)."""
        self._image(x, name, "a spatial mean")
        return self.add(ops.Mean(name, keep_dims=bool(keepdims)), [x])

    def flatten(self, name, x: Value) -> Value:
        """torch.flatten(x, 1): (1, C, H, W) -> (1, C*H*W)."""
        if len(x.shape) == 2:
            return x
        self._image(x, name, "flatten")
        _, h, w, c = x.shape
        chw = x.shape if h * w > 1 and c > 1 else None
        node = ops.Reshape(name, output=ir.Tensor(name, (1, h * w * c), "float32"))
        return self.add(node, [x], chw)

    def reshape(self, name, x: Value, target) -> Value:
        """view/reshape to ``target`` (PyTorch dims; -1 and 0 resolved by the caller)."""
        target = tuple(int(d) for d in target)
        if target == x.torch_shape:
            return x
        n = math.prod(x.shape)
        if math.prod(target) != n or min(target, default=1) < 1:
            raise ArchitectureError(f"{name}: cannot reshape {x.torch_shape} to {target}")
        if len(target) == 2 and target[0] == 1:
            return self.flatten(name, x)
        if len(target) == 4 and target[:1] == (1,) and target[2:] == (1, 1) and (
                len(x.shape) == 2 and x.chw_from is None or x.shape[1:3] == (1, 1)):
            node = ops.Reshape(name, output=ir.Tensor(name, (1, 1, 1, target[1]), "float32"))
            return self.add(node, [x])
        raise UnsupportedOpError(f"{name}: reshape from {x.torch_shape} to {target}; edgecnn "
                                 "reshapes to a flat (N, features) tensor or to (N, C, 1, 1)")

    def add_tensors(self, name, a: Value, b: Value) -> Value:
        if a.chw_from != b.chw_from:
            self._plain(a if a.chw_from is not None else b, "ADD", name)
        if len(a.shape) != len(b.shape):
            raise ArchitectureError(f"{name}: ADD of shapes {a.torch_shape} and "
                                    f"{b.torch_shape}: the ranks differ")
        return self.add(ops.Add(name), [a, b], a.chw_from)

    def concat(self, name, xs, dim) -> Value:
        if not xs:
            raise ArchitectureError(f"{name}: concatenation of no tensors")
        for x in xs:
            self._plain(x, "CONCATENATION", name)
        axis = torch_dim(dim, len(xs[0].shape), name)
        if len(xs) == 1:
            return xs[0]
        out = self.add(ops.Concatenation(name, axis), list(xs))
        if all(x.name in self.nonnegative for x in xs):
            self.nonnegative.add(out.name)
        return out

    def softmax(self, name, x: Value, dim=-1) -> Value:
        self._plain(x, "softmax", name)
        if len(x.shape) != 2 or torch_dim(dim, 2, name) != 1:
            raise UnsupportedOpError(f"{name}: softmax over dim {dim} of a tensor of shape "
                                     f"{x.torch_shape}; edgecnn runs it over the classes of "
                                     "a flat (N, classes) tensor")
        return self.add(ops.Softmax(name), [x])

    # ---- the graph ------------------------------------------------------------------------
    def finish(self, outputs, **graph_kwargs) -> ir.Graph:
        outputs = list(outputs)
        for v in outputs:
            self._plain(v, "the graph output", v.name)
        if not any(type(n).__name__ in ("Conv2D", "DepthwiseConv2D", "FullyConnected")
                   for n in self.nodes):
            raise ArchitectureError(f"{self.source}: the model holds no convolution or dense "
                                    "layer")
        names = [v.name for v in outputs]
        if self.input.name in names:
            raise ArchitectureError(f"{self.source}: the model's output is its input")
        if len(set(names)) != len(names):
            raise ArchitectureError(f"{self.source}: the same tensor is returned twice")
        graph = ir.Graph(self.input, tuple(self.nodes), tuple(names), **graph_kwargs).check()
        from .checks import check_folding, check_memory
        check_memory(graph, self.source, self.max_memory, self.weight_bytes, self.scratch)
        check_folding(graph, self.source)
        return graph


def ceil_extra(size, k, s, pb, pa) -> int:
    """Extra trailing padding PyTorch's ceil_mode adds (its last window must start in-bounds)."""
    out_floor = shapes.conv_output_size(size, k, s, pb, pa)
    out_ceil = -(-(size + pb + pa - k) // s) + 1
    if (out_ceil - 1) * s >= size + pb:
        out_ceil -= 1
    return (out_ceil - out_floor) * s if out_ceil > out_floor else 0
