"""``--arch resnet18|resnet34|resnet50|mobilenet_v2|squeezenet1_0|squeezenet1_1``: a
torchvision state_dict becomes the module tree torchvision builds, then the same templates as
a pickled module (so both give the same graph, byte for byte). (``--arch alexnet`` is a spec in
``arch.py``, named so that it gives the same bytes as the pickled torchvision AlexNet.)

Weights are taken by torchvision's parameter names (``layer1.0.conv1.weight``); strides,
paddings and groups are torchvision's; channel counts and the class count come from the
weights' shapes, so width variants and any ``num_classes`` load. A missing or left-over key
is refused with the keys named (and the built-in architecture the file does fit, if any).
"""

from __future__ import annotations

from edgecnn.errors import ArchitectureError

from ..pt_reader import ModuleRecord
from . import NN

TV = "torchvision.models."


class _Weights:
    """The state_dict, with every key taken recorded."""

    def __init__(self, state_dict, source, arch, hints=True):
        self.sd, self.source, self.arch, self.taken = state_dict, source, arch, set()
        self.hints = hints

    def get(self, key, required=True):
        if key not in self.sd:
            if not required:
                return None
            raise ArchitectureError(f"{self.source} does not fit --arch {self.arch}: it has no "
                                    f"{key!r}{self._hint()}")
        self.taken.add(key)
        return self.sd[key]

    def has(self, prefix):
        return any(k.startswith(prefix) for k in self.sd)

    def check_all_taken(self):
        left = [k for k in self.sd if k not in self.taken and not k.endswith("num_batches_tracked")]
        if left:
            raise ArchitectureError(f"{self.source} does not fit --arch {self.arch}: "
                                    f"{len(left)} tensors are left over, starting at "
                                    f"{left[0]!r}{self._hint()}")

    def _hint(self):
        if not self.hints:
            return ""
        fits = [name for name in BUILDERS if name != self.arch and _fits(name, self.sd)]
        if fits:
            return f" (the file fits --arch {fits[0]})"
        from ..arch import _describe, _groups
        held = "; ".join(_describe(p, g) for p, g in _groups(self.sd)[:12])
        return f"; the file holds: {held}"


def _fits(name, state_dict) -> bool:
    w = _Weights(state_dict, "", name, hints=False)
    try:
        BUILDERS[name](w)
        left = [k for k in state_dict if k not in w.taken and not k.endswith("num_batches_tracked")]
        return not left
    except (ArchitectureError, KeyError, IndexError, TypeError, ValueError):
        return False


def _record(qualname, attrs=None, params=None, buffers=None, children=None):
    return ModuleRecord(qualname, qualname.rsplit(".", 1)[1], dict(attrs or {}),
                        dict(params or {}), dict(buffers or {}), dict(children or {}))


def _conv(w, prefix, stride=1, padding=0, groups=1):
    weight = w.get(prefix + "weight")
    if getattr(weight, "ndim", 0) != 4:
        raise ArchitectureError(f"{w.source}: {prefix}weight is not a conv weight (OIHW)")
    groups = weight.shape[0] if groups == "depthwise" else groups
    return _record(NN + "conv.Conv2d", dict(stride=stride, padding=padding, groups=groups),
                   dict(weight=weight, bias=w.get(prefix + "bias", required=False)))


def _bn(w, prefix):
    w.get(prefix + "num_batches_tracked", required=False)
    return _record(NN + "batchnorm.BatchNorm2d", dict(eps=1e-5),
                   dict(weight=w.get(prefix + "weight"), bias=w.get(prefix + "bias")),
                   dict(running_mean=w.get(prefix + "running_mean"),
                        running_var=w.get(prefix + "running_var")))


def _linear(w, prefix):
    return _record(NN + "linear.Linear", {}, dict(weight=w.get(prefix + "weight"),
                                                  bias=w.get(prefix + "bias", required=False)))


def _leaf(kind, **attrs):
    return _record(NN + kind, attrs)


def _seq(children, qualname=NN + "container.Sequential"):
    return _record(qualname, children={str(i): c for i, c in enumerate(children)})


def _maxpool(k, s, p=0, ceil=False):
    return _leaf("pooling.MaxPool2d", kernel_size=k, stride=s, padding=p, ceil_mode=ceil)


# ---- ResNet -------------------------------------------------------------------------------

def _resnet(blocks, bottleneck):
    def build(w):
        layers = {}
        for li, n in enumerate(blocks, start=1):
            layer = []
            for bi in range(n):
                p = f"layer{li}.{bi}."
                stride = 2 if li > 1 and bi == 0 else 1
                kids = {}
                if bottleneck:  # torchvision's v1.5: the stride is on the 3x3 conv
                    kids.update(conv1=_conv(w, p + "conv1."), bn1=_bn(w, p + "bn1."),
                                conv2=_conv(w, p + "conv2.", stride, 1), bn2=_bn(w, p + "bn2."),
                                conv3=_conv(w, p + "conv3."), bn3=_bn(w, p + "bn3."))
                else:
                    kids.update(conv1=_conv(w, p + "conv1.", stride, 1), bn1=_bn(w, p + "bn1."),
                                conv2=_conv(w, p + "conv2.", 1, 1), bn2=_bn(w, p + "bn2."))
                kids["relu"] = _leaf("activation.ReLU")
                if w.has(p + "downsample."):
                    kids["downsample"] = _seq([_conv(w, p + "downsample.0.", stride),
                                               _bn(w, p + "downsample.1.")])
                cls = "resnet.Bottleneck" if bottleneck else "resnet.BasicBlock"
                layer.append(_record(TV + cls, children=kids))
            layers[f"layer{li}"] = _seq(layer)
        return _record(TV + "resnet.ResNet", children=dict(
            conv1=_conv(w, "conv1.", 2, 3), bn1=_bn(w, "bn1."), relu=_leaf("activation.ReLU"),
            maxpool=_maxpool(3, 2, 1), **layers,
            avgpool=_leaf("pooling.AdaptiveAvgPool2d", output_size=(1, 1)), fc=_linear(w, "fc.")))
    return build


# ---- MobileNetV2 --------------------------------------------------------------------------

CNA = "torchvision.ops.misc.Conv2dNormActivation"
_MBV2 = [(1, 1), (2, 2), (3, 2), (4, 2), (3, 1), (3, 2), (1, 1)]  # (blocks, first stride)


def _cna(w, prefix, stride=1, groups=1, kernel=1):
    return _seq([_conv(w, prefix + "0.", stride, kernel // 2, groups), _bn(w, prefix + "1."),
                 _leaf("activation.ReLU6")], CNA)


def mobilenet_v2(w):
    features, i = [_cna(w, "features.0.", 2, kernel=3)], 1
    for n, first_stride in _MBV2:
        for k in range(n):
            p = f"features.{i}.conv."
            stride = first_stride if k == 0 else 1
            expand = w.has(p + "3.")  # expand_ratio 1 blocks have no 1x1 expansion conv
            parts = [_cna(w, p + "0.")] if expand else []
            j = len(parts)
            parts += [_cna(w, f"{p}{j}.", stride, "depthwise", 3), _conv(w, f"{p}{j + 1}."),
                      _bn(w, f"{p}{j + 2}.")]
            c_in = parts[0].children["0"].parameters["weight"].shape[1 if expand else 0]
            c_out = parts[-2].parameters["weight"].shape[0]
            features.append(_record(TV + "mobilenetv2.InvertedResidual",
                                    dict(use_res_connect=stride == 1 and c_in == c_out),
                                    children=dict(conv=_seq(parts))))
            i += 1
    features.append(_cna(w, f"features.{i}."))
    return _record(TV + "mobilenetv2.MobileNetV2", children=dict(
        features=_seq(features),
        classifier=_seq([_leaf("dropout.Dropout"), _linear(w, "classifier.1.")])))


# ---- SqueezeNet ---------------------------------------------------------------------------

def _fire(w, prefix):
    return _record(TV + "squeezenet.Fire", children=dict(
        squeeze=_conv(w, prefix + "squeeze."), squeeze_activation=_leaf("activation.ReLU"),
        expand1x1=_conv(w, prefix + "expand1x1."), expand1x1_activation=_leaf("activation.ReLU"),
        expand3x3=_conv(w, prefix + "expand3x3.", 1, 1),
        expand3x3_activation=_leaf("activation.ReLU")))


def _squeezenet(pools):
    """pools: feature indices of the ceil-mode max pools; the first conv is 7x7 (1.0) or 3x3
    (1.1), read from its weight."""
    def build(w):
        features = [_conv(w, "features.0.", 2), _leaf("activation.ReLU")]
        for i in range(2, 13):
            features.append(_maxpool(3, 2, 0, True) if i in pools else _fire(w, f"features.{i}."))
        classifier = [_leaf("dropout.Dropout"), _conv(w, "classifier.1."),
                      _leaf("activation.ReLU"),
                      _leaf("pooling.AdaptiveAvgPool2d", output_size=(1, 1))]
        return _record(TV + "squeezenet.SqueezeNet",
                       children=dict(features=_seq(features), classifier=_seq(classifier)))
    return build


BUILDERS = {
    "resnet18": _resnet((2, 2, 2, 2), False),
    "resnet34": _resnet((3, 4, 6, 3), False),
    "resnet50": _resnet((3, 4, 6, 3), True),
    "mobilenet_v2": mobilenet_v2,
    "squeezenet1_0": _squeezenet((2, 6, 11)),
    "squeezenet1_1": _squeezenet((2, 5, 8)),
}


def module_tree(arch: str, state_dict, source: str) -> ModuleRecord:
    """The torchvision module tree of ``arch`` holding ``state_dict``'s tensors."""
    w = _Weights(state_dict, source, arch)
    try:
        root = BUILDERS[arch](w)
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise ArchitectureError(f"{source} does not fit --arch {arch} ({type(e).__name__}: "
                                f"{str(e)[:80]}){w._hint()}") from None
    w.check_all_taken()
    return root
