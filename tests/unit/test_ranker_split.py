"""`split_by_user` on small hand-built graphs, run in onnxruntime: the rewritten graph scores
every row as the exported one does, and a user part that is not row by row is left alone."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from service.bundle.ranker_split import OWNERS, split_by_user


def ranker(user_reduce_axes: list[int]):
    """score = sigmoid(sum(emb[user_ids] pooled) * item_value + bias)"""
    table = numpy_helper.from_array(np.arange(20, dtype=np.float32).reshape(10, 2), "table")
    axes = numpy_helper.from_array(np.array(user_reduce_axes, np.int64), "axes")
    bias = numpy_helper.from_array(np.array([0.5], np.float32), "bias")
    nodes = [
        helper.make_node("Gather", ["table", "user_ids"], ["emb"], axis=0),  # [B, 3, 2]
        helper.make_node("ReduceSum", ["emb", "axes"], ["pooled"], keepdims=0),
        helper.make_node("Mul", ["pooled", "item_value"], ["mixed"]),
        helper.make_node("Add", ["mixed", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ranker",
        [
            helper.make_tensor_value_info("user_ids", TensorProto.INT64, [None, 3]),
            helper.make_tensor_value_info("item_value", TensorProto.FLOAT, [None]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        [table, axes, bias],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def test_each_users_side_once_gives_every_rows_score():
    model = ranker([1, 2])
    split = split_by_user(model, {"user_ids"})
    assert split is not None and OWNERS in [i.name for i in split.graph.input]
    users = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int64)
    owners = np.array([2, 0, 0, 1, 2, 1, 0], np.int64)
    items = np.linspace(-1, 1, len(owners), dtype=np.float32)
    rows = run(model, {"user_ids": users[owners], "item_value": items})
    once = run(split, {"user_ids": users, "item_value": items, OWNERS: owners})
    assert rows.shape == once.shape == (len(owners),)
    np.testing.assert_allclose(once, rows, rtol=1e-6)
    assert len(set(np.round(rows.reshape(-1), 5))) > 3  # the users differ: a mix-up would show


def test_a_user_part_that_mixes_rows_is_left_as_exported():
    assert split_by_user(ranker([0, 1, 2]), {"user_ids"}) is None  # sums over the batch
    assert split_by_user(ranker([1, 2]), set()) is None  # no user side
