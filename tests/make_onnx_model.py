#!/usr/bin/python3
"""Writes small ONNX models for the command-line tests (tests/cli_test.sh).

usage: make_onnx_model.py KIND OUT.onnx
  gemm         Gemm(transB) + Relu over an input with a symbolic batch dimension
  unsupported  two nodes of ops kiln does not import (the error must list both)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper


def gemm_model():
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist())
    nodes = [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1, name="fc"),
             helper.make_node("Relu", ["y"], ["z"], name="act")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])]
    outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])]
    return helper.make_graph(nodes, "gemm", inputs, outputs, [w])


def unsupported_model():
    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk_1"),
             helper.make_node("NonZero", ["v"], ["z"], name="nz_2")]
    k = helper.make_tensor("k", TensorProto.INT64, [1], [2])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])]
    outputs = [helper.make_tensor_value_info("z", TensorProto.INT64, [1, None])]
    return helper.make_graph(nodes, "unsupported", inputs, outputs, [k])


def main():
    kind, out = sys.argv[1], sys.argv[2]
    graph = {"gemm": gemm_model, "unsupported": unsupported_model}[kind]()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, out)


if __name__ == "__main__":
    main()
