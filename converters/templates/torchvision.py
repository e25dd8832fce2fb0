"""torchvision's forward() methods as graph templates (torchvision 0.13 to 0.28 layouts).

Each template reads exactly the submodules the class's own forward() reads, in its order,
and refuses a module holding others (then it is not the class edgecnn knows). The shapes and
hyperparameters come from the children (conv strides, pool sizes), so width multipliers,
ResNeXt groups and class counts need nothing here.
"""

from __future__ import annotations

from edgecnn.errors import ArchitectureError

from . import ModuleWalker, join

TV = "torchvision.models."


def _features_pool_classifier(pool: str):
    """AlexNet and VGG: features, avgpool, flatten, classifier."""
    def forward(w: ModuleWalker, m, x, path):
        w.expect_children(m, path, ("features", pool, "classifier"))
        x = w.call(m, "features", x, path)
        x = w.call(m, pool, x, path)
        x = w.b.flatten(join(path, "flatten"), x)
        return w.call(m, "classifier", x, path)
    return forward


def _resnet(w: ModuleWalker, m, x, path):
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
             "avgpool", "fc")
    w.expect_children(m, path, names)
    for name in names[:-1]:
        x = w.call(m, name, x, path)
    x = w.b.flatten(join(path, "flatten"), x)
    return w.call(m, "fc", x, path)


def _residual_block(convs: int):
    """BasicBlock (2 convs) and Bottleneck (3): conv, bn, relu ..., + identity, relu."""
    def forward(w: ModuleWalker, m, x, path):
        names = [f"{k}{i}" for i in range(1, convs + 1) for k in ("conv", "bn")]
        w.expect_children(m, path, names + ["relu", "downsample"])
        out = x
        for i in range(1, convs + 1):
            out = w.call(m, f"conv{i}", out, path)
            out = w.call(m, f"bn{i}", out, path)
            if i < convs:
                out = w.call(m, "relu", out, path)
        identity = x
        if w.child(m, "downsample", path, required=False) is not None:
            identity = w.call(m, "downsample", x, path)
        out = w.b.add_tensors(join(path, "add"), out, identity)
        return w.call(m, "relu", out, path)
    return forward


def _flag(m, key, path):
    value = m.attrs.get(key)
    if not isinstance(value, bool):
        raise ArchitectureError(f"module {path or 'the model'} ({m.type_name}) has no boolean "
                                f"{key!r}; it is not the layout edgecnn knows")
    return value


def _mobilenet_v2(w: ModuleWalker, m, x, path):
    w.expect_children(m, path, ("features", "classifier"))
    x = w.call(m, "features", x, path)
    x = w.b.adaptive_avgpool(join(path, "adaptive_avg_pool2d"), x, (1, 1))
    x = w.b.flatten(join(path, "flatten"), x)
    return w.call(m, "classifier", x, path)


def _inverted_residual(child: str, flag: str):
    """MobileNetV2's InvertedResidual (x + conv(x)) and MNASNet's (layers(x) + x)."""
    def forward(w: ModuleWalker, m, x, path):
        w.expect_children(m, path, (child,))
        out = w.call(m, child, x, path)
        if not _flag(m, flag, path):
            return out
        a, b = (x, out) if child == "conv" else (out, x)
        return w.b.add_tensors(join(path, "add"), a, b)
    return forward


def _squeezenet(w: ModuleWalker, m, x, path):
    w.expect_children(m, path, ("features", "classifier"))
    x = w.call(m, "features", x, path)
    x = w.call(m, "classifier", x, path)
    return w.b.flatten(join(path, "flatten"), x)


def _fire(w: ModuleWalker, m, x, path):
    w.expect_children(m, path, ("squeeze", "squeeze_activation", "expand1x1",
                                "expand1x1_activation", "expand3x3", "expand3x3_activation"))
    x = w.call(m, "squeeze_activation", w.call(m, "squeeze", x, path), path)
    a = w.call(m, "expand1x1_activation", w.call(m, "expand1x1", x, path), path)
    b = w.call(m, "expand3x3_activation", w.call(m, "expand3x3", x, path), path)
    return w.b.concat(join(path, "cat"), [a, b], 1)


def _mnasnet(w: ModuleWalker, m, x, path):
    w.expect_children(m, path, ("layers", "classifier"))
    x = w.call(m, "layers", x, path)
    x = w.b.global_mean(join(path, "mean"), x, keepdims=False)
    return w.call(m, "classifier", x, path)


TEMPLATES = {
    TV + "alexnet.AlexNet": _features_pool_classifier("avgpool"),
    TV + "vgg.VGG": _features_pool_classifier("avgpool"),
    TV + "resnet.ResNet": _resnet,
    TV + "resnet.BasicBlock": _residual_block(2),
    TV + "resnet.Bottleneck": _residual_block(3),
    TV + "mobilenetv2.MobileNetV2": _mobilenet_v2,
    TV + "mobilenetv2.InvertedResidual": _inverted_residual("conv", "use_res_connect"),
    TV + "squeezenet.SqueezeNet": _squeezenet,
    TV + "squeezenet.Fire": _fire,
    TV + "mnasnet.MNASNet": _mnasnet,
    TV + "mnasnet._InvertedResidual": _inverted_residual("layers", "apply_residual"),
}
MODELS = ("AlexNet", "VGG", "ResNet", "MobileNetV2", "SqueezeNet", "MNASNet")  # for messages
