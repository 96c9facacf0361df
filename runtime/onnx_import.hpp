#pragma once
/// ONNX import: an ONNX file (opsets 7 to 18) into the graph IR.
#include <map>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace dcs {

struct ImportOptions {
    /// Graph inputs to bind to constant values before import (they become initializers). Used to
    /// run operator tests whose shapes, pads or clip bounds are given as graph inputs.
    std::map<std::string, Tensor> constant_inputs;
    /// Fold BatchNormalization into a preceding Conv or Gemm where the graph allows it.
    bool fold_batch_norm = true;
};

/// Reads and converts an ONNX model. External data is read only from inside the model's directory.
/// Throws InputError naming the file and, where it applies, the node, operator or initializer.
Graph import_onnx(const std::string& path, const ImportOptions& options = {});

/// Same, from serialized bytes; `path` names the model in messages and locates external data.
Graph import_onnx_bytes(const std::string& bytes, const std::string& path,
                        const ImportOptions& options = {});

/// Reads a serialized onnx TensorProto (the `input_0.pb` files of ONNX's backend tests).
Tensor read_tensor_pb(const std::string& path);

/// The operator types the importer accepts, comma-separated (for messages): the operator table's
/// rows (runtime/ops/op_table.hpp), then the nodes the import removes (Constant, Identity, Dropout).
const char* supported_operators();

/// The same operator types, one per entry.
std::vector<std::string> supported_operator_names();

/// The Markdown table of supported operators and their notes that docs/onnx-support.md holds
/// (tests/runtime/test_op_table.cpp checks that the page matches it).
std::string supported_operators_markdown();

}  // namespace dcs
