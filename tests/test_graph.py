"""The graph IR: names, checks, passes on branches, and the one memory planner.

Random DAGs of int8 ops (branches, several outputs, reshape views, in-place ReLUs) run with
the planned arena must equal the same graph with every tensor in its own buffer, on both
backends; and the plan never lets two tensors alive at the same step share a byte.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn import ir, ops, shapes
from edgecnn.errors import ArchitectureError
from edgecnn.fold import fold_batchnorm
from edgecnn.memory import nbytes, plan_memory
from edgecnn.passes import fuse_activations
from edgecnn.prepare import prepare_calls
from edgecnn.runtime import Runtime
from edgecnn.summary import summarize

Q = ir.QuantParams.per_tensor


def _t(name, shape=(), dtype="int8", quant=None):
    return ir.Tensor(name, shape, dtype, quant)


def _relu(name, src, scale=0.05, zp=-10):
    return ops.Activation(name, "relu", inputs=(src,), output=_t(name, quant=Q(scale, zp)))


def test_check_refuses_dangling_names_double_writes_and_missing_outputs():
    x = _t("x", (1, 4, 4, 2), quant=Q(0.05, 0))
    a = _relu("a", "x")
    with pytest.raises(ArchitectureError, match="reads tensor 'nope', which no earlier node"):
        ir.Graph(x, (_relu("b", "nope"),), ("b",)).check()
    with pytest.raises(ArchitectureError, match="writes tensor 'a', which is already written"):
        ir.Graph(x, (a, _relu("a", "x")), ("a",)).check()
    with pytest.raises(ArchitectureError, match="graph output 'zz' is not a tensor"):
        ir.Graph(x, (a,), ("zz",)).check()
    with pytest.raises(ArchitectureError, match="reads tensor 'c'"):  # out of order (a cycle)
        ir.Graph(x, (_relu("b", "c"), _relu("c", "b")), ("c",)).check()


def test_producers_consumers_and_uses_by_name():
    x = _t("x", (1, 4, 4, 2), quant=Q(0.05, 0))
    g = ir.Graph(x, (_relu("a", "x"), _relu("b", "a"), _relu("c", "a")), ("b", "c", "a"))
    assert [n.name for n in g.consumers("a")] == ["b", "c"]
    assert g.producer("a").name == "a" and g.producer("x") is None
    assert g.uses("a") == 3  # two readers and a graph output
    with pytest.raises(ArchitectureError, match="has 3 outputs"):
        g.output  # noqa: B018


def _conv(name, src, c_in, c_out, rng):
    w = rng.normal(0, 0.3, (c_out, 1, 1, c_in)).astype(np.float32)
    return ops.Conv2D(name, w, np.zeros(c_out, np.float32), inputs=(src,),
                      output=_t(name, dtype="float32"))


def _bn(name, src, c, rng):
    return ops.BatchNorm(name, *(rng.uniform(0.5, 1.5, c).astype(np.float32) for _ in range(4)),
                         eps=1e-5, inputs=(src,), output=_t(name, dtype="float32"))


def test_batchnorm_folds_only_into_a_producer_it_alone_reads():
    rng = np.random.default_rng(0)
    x = _t("x", (1, 5, 5, 3), "float32")
    single = ir.Graph(x, (_conv("c1", "x", 3, 4, rng), _bn("bn1", "c1", 4, rng)), ("bn1",))
    folded = fold_batchnorm(shapes.infer_shapes(single))
    assert [type(n).__name__ for n in folded.nodes] == ["Conv2D"]
    assert folded.nodes[0].output.name == "bn1"  # the conv now writes the BN's tensor
    shared = ir.Graph(x, (_conv("c1", "x", 3, 4, rng), _bn("bn1", "c1", 4, rng),
                          ops.Activation("skip", "relu", inputs=("c1",),
                                         output=_t("skip", dtype="float32"))), ("bn1", "skip"))
    kept = fold_batchnorm(shapes.infer_shapes(shared))  # the conv's output also feeds "skip"
    assert [(type(n).__name__, n.output.name) for n in kept.nodes] == [
        ("Conv2D", "c1"), ("DepthwiseConv2D", "bn1"), ("Activation", "skip")]


def test_relu_fuses_only_where_the_producer_output_has_no_other_reader():
    rng = np.random.default_rng(1)
    x = _t("x", (1, 5, 5, 3), "float32")
    relu = ops.Activation("r", "relu", inputs=("c1",), output=_t("r", dtype="float32"))
    fused = fuse_activations(shapes.infer_shapes(ir.Graph(x, (_conv("c1", "x", 3, 4, rng), relu),
                                                          ("r",))))
    assert [(type(n).__name__, n.output.name) for n in fused.nodes] == [("Conv2D", "r")]
    assert fused.nodes[0].activation == "relu"
    kept = fuse_activations(shapes.infer_shapes(ir.Graph(
        x, (_conv("c1", "x", 3, 4, rng), relu), ("r", "c1"))))  # c1 is also a graph output
    assert [type(n).__name__ for n in kept.nodes] == ["Conv2D", "Activation"]


# ---- random DAGs through the planner --------------------------------------------------------

def _random_dag(rng):
    """An int8 graph on (1, 6, 6, C): each node reads a random earlier tensor."""
    c = int(rng.integers(1, 5))
    x = _t("x", (1, 6, 6, c), quant=Q(0.04, int(rng.integers(-20, 20))))
    tensors = {"x": x}
    nodes = []
    for i in range(int(rng.integers(3, 14))):
        src = tensors[rng.choice(sorted(tensors))]
        name = f"n{i}"
        kind = rng.integers(4) if len(src.shape) == 4 else 0
        if kind == 0:
            node = ops.Activation(name, ("relu", "relu6", "tanh")[rng.integers(3)],
                                  inputs=(src.name,))
            q = Q(1 / 128, 0) if node.kind == "tanh" else Q(float(rng.uniform(0.02, 0.06)),
                                                           int(rng.integers(-30, 30)))
        elif kind == 1:
            node, q = ops.MaxPool2D(name, (2, 2), (1, 1), inputs=(src.name,)), src.quant
        elif kind == 2:
            node, q = ops.Pad(name, (1, 0, 0, 1), inputs=(src.name,)), src.quant
        else:
            node, q = ops.Reshape(name, inputs=(src.name,)), src.quant
        shape = tuple(node.out_shape([src.shape]))
        node = ir.replace(node, output=_t(name, shape, quant=q))
        nodes.append(node)
        tensors[name] = node.output
    outs = [n.output.name for n in nodes if rng.random() < 0.3] or [nodes[-1].output.name]
    return ir.Graph(x, tuple(nodes), tuple(outs)).check()


def _assert_no_live_overlap(graph, plan, steps):
    """Tensors owning bytes, alive at one step, never share a byte."""
    last = {}
    for i, (node, _) in enumerate(steps):
        for name in node.inputs:
            last[plan.root[name]] = max(last.get(plan.root[name], -1), i)
    for name in graph.outputs:
        last[plan.root[name]] = len(steps)
    first = {graph.input.name: -1}
    for i, (node, _) in enumerate(steps):
        first.setdefault(plan.root[node.output.name], i)
    owners = sorted(first)
    for a in owners:
        for b in owners:
            if a >= b:
                continue
            la, lb = max(last.get(a, first[a]), first[a]), max(last.get(b, first[b]), first[b])
            if first[a] <= lb and first[b] <= la:
                ra = (plan.offsets[a], plan.offsets[a] + nbytes(graph.tensor(a)))
                rb = (plan.offsets[b], plan.offsets[b] + nbytes(graph.tensor(b)))
                assert ra[1] <= rb[0] or rb[1] <= ra[0], (a, b, ra, rb)


@pytest.mark.parametrize("backend", ["reference", "cython"])
def test_random_dags_run_the_same_in_the_planned_arena(backend):
    rng = np.random.default_rng(20261126)
    shared = inplace = 0
    for case in range(40):
        graph = _random_dag(rng)
        steps = prepare_calls(graph)
        plan = plan_memory(graph, steps)
        _assert_no_live_overlap(graph, plan, steps)
        shared += sum(bool(r.shares) for r in plan.rows)
        inplace += sum(bool(r.shares) and r.op in ("ReLU", "ReLU6", "Tanh") for r in plan.rows)
        planned = Runtime(graph, backend)
        separate = Runtime(graph, backend, preserve_all=True)
        for _ in range(2):
            x = rng.integers(-128, 128, graph.input.shape).astype(np.int8)
            for got, want, name in zip(planned.invoke_all(x), separate.invoke_all(x),
                                       graph.outputs):
                np.testing.assert_array_equal(got, want, err_msg=f"case {case}, output {name}")
        assert planned.arena_bytes <= separate.arena_bytes
    assert shared > 10 and inplace > 3  # the cases exercise views and in-place writes


def test_receptive_field_follows_branches():
    x = _t("x", (1, 16, 16, 1), "float32")
    p1 = ops.MaxPool2D("p1", (3, 3), (1, 1), inputs=("x",), output=_t("p1", dtype="float32"))
    p2 = ops.MaxPool2D("p2", (5, 5), (1, 1), inputs=("x",), output=_t("p2", dtype="float32"))
    p3 = ops.MaxPool2D("p3", (2, 2), (2, 2), inputs=("p2",), output=_t("p3", dtype="float32"))
    g = shapes.infer_shapes(ir.Graph(x, (p1, p2, p3), ("p1", "p3")))
    rows = {r.name: r for r in summarize(g).layers}
    assert rows["p1"].receptive_field == (3, 3) and rows["p3"].receptive_field == (6, 6)
    assert summarize(g).arena_bytes >= 4 * (16 * 16 + 14 * 14)  # x and p1 alive with p2


def test_a_multi_output_graph_runs_verifies_and_exports(tmp_path):
    """(test_export_c_multi_output.py builds and runs such firmware.)"""
    from edgecnn.export_c import export_c
    from edgecnn.tflite.writer import write_tflite
    from edgecnn.verify import verify
    x = _t("x", (1, 6, 6, 2), quant=Q(0.04, 3))
    a = ir.replace(_relu("a", "x"), output=_t("a", (1, 6, 6, 2), quant=Q(0.03, -100)))
    p = ops.MaxPool2D("p", (2, 2), (2, 2), inputs=("x",), output=_t("p", (1, 3, 3, 2),
                                                                     quant=Q(0.04, 3)))
    path = tmp_path / "two.tflite"
    write_tflite(ir.Graph(x, (a, p), ("a", "p")), path)
    report = verify(str(path), None, "litert-ref", count=3)  # every tensor, both outputs
    assert report.ok and [r.name for r in report.rows] == ["x", "a", "p"]
    rt = Runtime(ir.Graph(x, (a, p), ("a", "p")), "cython")
    outs = rt.invoke_all(np.zeros((1, 6, 6, 2), np.int8))
    assert [o.shape for o in outs] == [(1, 6, 6, 2), (1, 3, 3, 2)]
    export_c(str(path), tmp_path / "fw")
    header = (tmp_path / "fw" / "model.h").read_text()
    assert "#define EC_MODEL_NUM_OUTPUTS 2" in header
    assert "#define EC_MODEL_OUTPUT0_COUNT 72" in header
    assert "#define EC_MODEL_OUTPUT1_COUNT 18" in header
