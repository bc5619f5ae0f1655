"""The ranker graph rewritten so each request's user side is computed once, not once per row.

A ranker scores (user, candidate) rows, and a request's user-side inputs repeat on every one
of its rows: in the posts DeepFM the user-only part of the graph (embedding lookups, the
pooling of 30 read items and 10 weighted topics) is most of a run (Gather, ReduceSum and Mul
62% by onnxruntime's profiler; 4.6 us per row whatever the batch). The rewritten graph takes
the user-side inputs once per request and one more input, ``owners`` (the request of each
row), and gathers the user-only results to rows where they first meet an item-side value.

Only a graph whose user-only nodes work row by row is rewritten (the ops below, axes other
than the batch axis); anything else is left as exported. `ServingModel` checks the rewritten
graph's scores against the exported one's on real rows before it uses it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import onnx
from onnx import helper, numpy_helper

from service.bundle.onnx_model import OnnxModel

log = logging.getLogger(__name__)
OWNERS = "owners"
ROW_WISE = frozenset(
    {
        *("Abs", "Add", "And", "Cast", "Clip", "Div", "Equal", "Exp", "Greater"),
        *("GreaterOrEqual", "Identity", "Less", "LessOrEqual", "Log", "Max", "Min", "Mul"),
        *("Neg", "Not", "Or", "Relu", "Sigmoid", "Sqrt", "Sub", "Tanh", "Where"),
    }
)
AXES = frozenset({"ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Squeeze", "Unsqueeze"})


def split_by_user(model: onnx.ModelProto, user_inputs: Collection[str]) -> onnx.ModelProto | None:
    """The rewritten model, or None when its user-only part is not provably row by row (or
    there is none)."""
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    side = {i.name: ("user" if i.name in user_inputs else "item") for i in graph.input}
    cuts: dict[str, list[tuple[int, int]]] = {}  # user value -> (node, input) reading it
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        kinds = {side.get(name, "constant") for name in node.input if name}
        kind = "item" if "item" in kinds else "user" if "user" in kinds else "constant"
        if kind == "user" and not _row_wise(node, side, constants):
            return None
        if kind == "item":
            for n, name in enumerate(node.input):
                if side.get(name) == "user":
                    cuts.setdefault(name, []).append((index, n))
        for name in node.output:
            side[name] = kind
    if not cuts or any(side.get(o.name) == "user" for o in graph.output):
        return None
    split = onnx.ModelProto()
    split.CopyFrom(model)
    _gather_at_cuts(split.graph, cuts)
    return split


def _row_wise(node: onnx.NodeProto, side: dict[str, str], constants: dict) -> bool:
    if node.op_type in ROW_WISE:
        return all(
            _broadcasts_per_row(constants.get(name))
            for name in node.input
            if side.get(name, "constant") == "constant"
        )
    if node.op_type == "Gather":  # an embedding lookup: a constant table, the user's ids
        axis = _attribute(node, "axis", 0)
        return node.input[0] in constants and axis == 0
    if node.op_type in AXES:
        axes = _attribute(node, "axes", None)
        if axes is None and len(node.input) > 1:
            axes = constants.get(node.input[1])
        return axes is not None and 0 not in {int(a) for a in list(axes)}
    if node.op_type == "Slice":
        return _slice_keeps_rows(node, constants)
    if node.op_type == "Reshape":  # [-1, fixed...]: keeps rows when the row size matches
        shape = constants.get(node.input[1])
        return (
            shape is not None
            and len(shape) >= 2
            and shape[0] in (-1, 0)
            and all(s > 0 for s in shape[1:])
        )
    return False


def _slice_keeps_rows(node: onnx.NodeProto, constants: dict) -> bool:
    """Constant starts, ends, axes (and steps), and the batch axis, if sliced, kept whole
    (from 0 to an end past any batch: tf2onnx writes 1e9 for "to the end")."""
    starts, ends, *rest = (constants.get(name) for name in node.input[1:])
    axes = rest[0] if rest else None
    steps = rest[1] if len(rest) > 1 else None
    if starts is None or ends is None or axes is None or (len(rest) > 1 and steps is None):
        return False
    for k, axis in enumerate(axes.tolist()):
        step = 1 if steps is None else int(steps[k])
        if axis == 0 and not (starts[k] == 0 and ends[k] >= 10**9 and step == 1):
            return False
    return True


def _broadcasts_per_row(value) -> bool:
    """A constant operand the same for every row: a scalar, a vector, or leading size 1."""
    return value is not None and (value.ndim <= 1 or value.shape[0] == 1)


def _attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _gather_at_cuts(graph: onnx.GraphProto, cuts: dict[str, list[tuple[int, int]]]) -> None:
    """Each cut value gathered to rows just before its first reader (nodes stay in
    topological order)."""
    graph.input.append(helper.make_tensor_value_info(OWNERS, onnx.TensorProto.INT64, [None]))
    inserts = []
    for name, uses in cuts.items():
        rows = f"{name}__rows"
        for node_index, input_index in uses:
            graph.node[node_index].input[input_index] = rows
        gather = helper.make_node("Gather", [name, OWNERS], [rows], axis=0)
        inserts.append((min(n for n, _ in uses), gather))
    for position, gather in sorted(inserts, key=lambda x: -x[0]):
        graph.node.insert(position, gather)


def ranker_by_user(ranker: OnnxModel, user_inputs: Collection[str]) -> OnnxModel | None:
    """A session on ``ranker``'s graph rewritten by `split_by_user`, or None when it cannot be.
    A rewrite that fails is logged and never stops a model from loading: the exported graph
    always serves."""
    try:
        split = split_by_user(onnx.load(ranker.path), user_inputs)
        if split is None:
            return None
        threads = ranker.session.get_session_options().intra_op_num_threads
        return OnnxModel(ranker.path, threads, graph=split.SerializeToString())
    except Exception:
        log.exception("ranker %s not rewritten; ranking row by row", ranker.path)
        return None
