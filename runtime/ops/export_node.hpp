#pragma once
/// One graph node being written to the QDQ model (runtime/onnx_export.cpp), as the operator table's
/// export functions see it. Keeps the protobuf types out of the rows.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace onnx {
class NodeProto;
}  // namespace onnx

namespace dcs {

class QdqWriter;  // runtime/onnx_export.cpp

class ExportNode {
public:
    ExportNode(QdqWriter& writer, const Node& node, std::vector<std::string> inputs, std::string corrected_bias,
               const std::map<std::string, std::vector<int64_t>>& shapes);

    const Node& node;
    const std::string where;          ///< node_where(node)
    std::vector<std::string> inputs;  ///< the ONNX inputs (after Q/DQ renaming); rows may change them
    /// A layer's bias-corrected bias initializer; "" when the bias is unchanged.
    const std::string corrected_bias;
    const std::map<std::string, std::vector<int64_t>>& shapes;  ///< every value's shape at batch 1

    /// Writes the ONNX node `op_type` named as the graph node, reading `inputs`, writing its outputs.
    void emit(const char* op_type);
    /// Attributes of the node emit() wrote. set_ints skips an empty list.
    void set_int(const char* name, int64_t v);
    void set_ints(const char* name, const std::vector<int64_t>& v);
    void set_float(const char* name, float v);
    void set_string(const char* name, const std::string& v);
    /// A new float / int64 initializer named after `base` (made unique); returns its name.
    std::string const_f32(const std::string& base, const std::vector<int64_t>& shape, const std::vector<float>& v);
    std::string const_i64(const std::string& base, const std::vector<int64_t>& shape, const std::vector<int64_t>& v);
    /// True once emit() was called.
    bool emitted() const { return proto_ != nullptr; }

private:
    QdqWriter& w_;
    onnx::NodeProto* proto_ = nullptr;
};

}  // namespace dcs
