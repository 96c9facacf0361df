/// Fuzz target: the ONNX importer (protobuf parsing, operator checks, BN folding, constant folding,
/// shape inference), then what `dcsearch inspect` does with an imported graph (the compressible
/// layers), and for small graphs one reference forward pass on zeros.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_target.hpp"
#include "runtime/onnx_import.hpp"
#include "runtime/reference_executor.hpp"

namespace {

/// Elements of a shape with the dynamic batch set to 1; 0 when a dimension is unknown or the count
/// exceeds `limit`.
int64_t bounded_numel(const std::vector<int64_t>& shape, int64_t limit) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d == -1) d = 1;
        if (d < 1 || n > limit / d) return 0;
        n *= d;
    }
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // External data resolves against the model's directory: an empty scratch directory here.
    static const std::string model = dcs::fuzz::scratch_dir() + "/model.onnx";
    dcs::fuzz::expect_input_errors_only("fuzz_onnx", [&] {
        dcs::Graph g = dcs::import_onnx_bytes(std::string(reinterpret_cast<const char*>(data), size), model);
        const auto layers = dcs::list_layers(g);
        // One forward pass when it is cheap: bounded input, activations and work.
        int64_t macs = 0;
        for (const auto& l : layers)
            if (__builtin_add_overflow(macs, l.macs, &macs)) return;
        if (g.inputs.size() != 1 || macs > (int64_t(1) << 20)) return;
        const auto shapes = g.infer_shapes(1);
        int64_t total = 0;
        for (const auto& [name, shape] : shapes) {
            const int64_t n = bounded_numel(shape, int64_t(1) << 20);
            if (n == 0 && !shape.empty()) return;
            total += n;
            if (total > (int64_t(1) << 22)) return;
        }
        dcs::Tensor x;
        x.shape = shapes.at(g.inputs[0].name);
        x.data.assign(static_cast<size_t>(bounded_numel(x.shape, int64_t(1) << 20)), 0.0f);
        dcs::ReferenceExecutor(g).run({x});
    });
    return 0;
}
