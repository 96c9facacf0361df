#pragma once
/// Graph passes the import runs: constant folding of shape arithmetic (before the nodes become IR
/// nodes: the operators it evaluates, Shape, Gather, Slice, Cast..., are not IR operators) and
/// BatchNorm folding (on the IR).
#include <functional>
#include <string>

#include "runtime/graph.hpp"

namespace dcs {

class OnnxNode;

/// Evaluates a shape-arithmetic node (Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Flatten,
/// ConstantOfShape, Slice, Transpose, Cast, Add, Sub, Mul, Div) whose inputs are all constants and
/// stores its output in graph.initializers. The Shape of an activation is inferred over the nodes
/// converted so far; its dynamic batch dimension stands as kBatchSentinel (runtime/ops/op_util.hpp).
/// @param resolve maps a value name through the Identity/Dropout aliases removed at import
/// @return false when the node is not foldable (another operator, a non-constant input)
/// @throws InputError naming the node when it is foldable but wrong (an index out of range, a
///         computation with the batch size)
bool fold_constant_node(const OnnxNode& node, Graph& graph,
                        const std::function<std::string(const std::string&)>& resolve);

/// Folds y = BN(Conv(x)) or y = BN(Gemm(x)) into the Conv/Gemm when the producer's output feeds only
/// the BN, its weight and bias are constants, and it is not a graph output. A weight or bias another
/// node shares is copied under a fresh name, never changed in place. Expects topologically sorted
/// nodes whose inputs are resolved value names.
void fold_batch_norms(Graph& graph);

}  // namespace dcs
