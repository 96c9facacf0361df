// Writing a candidate's packed and QDQ models (choosing it: test_queries.cpp).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.hpp"
#include "runtime/candidate.hpp"
#include "runtime/onnx_import.hpp"
#include "search/export.hpp"
#include "support/process.hpp"

using namespace dcs;
using namespace dcs::search;
using dcs::test::TempDir;

TEST(Export, ExportModelWritesTheRecordedSize) {
    const std::string model = std::string(DCS_SOURCE_DIR) + "/configs/lenet300.onnx";
    Graph g = import_onnx(model);
    DatasetConfig dc;
    dc.images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    dc.labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    Dataset data = Dataset::load(dc);
    ModelIo io = check_model_io(g, data, model);
    const auto layers = list_layers(g);
    std::vector<compress::LayerChoice> choices(layers.size());
    choices[0] = {3, 0.75};
    choices[1] = {5, 0.5};
    ExportSettings s;
    s.calibration = {0, 64};
    s.preprocess.mean = {0.2860f};
    s.preprocess.std = {0.3530f};
    TempDir dir;
    const std::string out = dir.file("sub/dir");
    ExportedModel m = export_model(g, data, io, choices, s, out);
    const uint64_t expected = compress_model(g, layers, choices, s.spec).size_bytes;
    EXPECT_EQ(m.dcz_bytes, expected);
    EXPECT_EQ(std::filesystem::file_size(m.dcz_path), expected);
    ASSERT_TRUE(std::filesystem::exists(m.onnx_path));
    EXPECT_GT(std::filesystem::file_size(m.onnx_path), 0u);
    // The QDQ model holds int8 weights: smaller than the fp32 model, larger than the packed one.
    EXPECT_LT(std::filesystem::file_size(m.onnx_path), std::filesystem::file_size(model));
    EXPECT_GT(m.bops, 0.0);

    ExportSettings bad = s;
    bad.calibration = {data.size(), 10};
    EXPECT_THROW(export_model(g, data, io, choices, bad, out), InputError);
    choices.pop_back();
    EXPECT_THROW(export_model(g, data, io, choices, s, out), InputError);
}
