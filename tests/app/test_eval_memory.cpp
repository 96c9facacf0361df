// Evaluation memory does not grow with the validation count: `dcsearch eval` of LeNet-5 on 500 and on
// 5,000 Fashion-MNIST images (fp32 baseline and int8) peaks at the same memory when batches are
// streamed (DCS_KEPT_BATCHES_MB=0) and fp32 plans run in small chunks (DCS_ACTIVATION_MB=1), and gives
// the accuracy of the kept, whole-batch run. The kept batches of 4,500 more images (14 MB) do show up
// when batches are kept, so the measurement can see such growth.
#include <gtest/gtest.h>

#include <string>

#include "support/process.hpp"
#include "support/search_config.hpp"

using namespace dcs::test;

namespace {

std::string config(int count) {
    return lenet5_model_and_data(512, 512, count);
}

struct Measured {
    double peak = 0, correct = 0;
};

Measured eval(const TempDir& dir, int count, bool int8, const std::vector<std::string>& env) {
    const std::string cfg = dir.write("c" + std::to_string(count) + ".yaml", config(count));
    const std::string layers = std::string(DCS_SOURCE_DIR) + "/configs/lenet5.layers.yaml";
    std::vector<std::string> argv{DCS_BINARY, "eval", cfg, "--json"};
    if (int8) argv.insert(argv.end(), {"--layers", layers});
    std::vector<std::string> e = env;
    e.push_back("OMP_NUM_THREADS=1");
    // In the sanitized build ASan would hold freed blocks in its quarantine: memory it adds, not ours.
    e.push_back("ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=0:thread_local_quarantine_size_kb=0");
    const ProcResult r = run_process(argv, 300, e);
    EXPECT_EQ(r.status, 0) << r.err;
    return {json_number(r.out, "peak_rss_bytes"), json_number(r.out, "correct")};
}

TEST(EvalMemory, DoesNotGrowWithTheValidationCount) {
    TempDir dir;
    const std::vector<std::string> bounded{"DCS_KEPT_BATCHES_MB=0", "DCS_ACTIVATION_MB=1"};
    for (bool int8 : {false, true}) {
        const Measured small = eval(dir, 500, int8, bounded), large = eval(dir, 5000, int8, bounded);
        ASSERT_GT(small.peak, 10e6) << "no peak_rss_bytes";
        EXPECT_LT(large.peak - small.peak, 4e6)
            << (int8 ? "int8" : "fp32") << ": " << small.peak << " -> " << large.peak;
        // Streaming and chunks change nothing in the results.
        EXPECT_EQ(eval(dir, 5000, int8, {}).correct, large.correct);
        // Kept batches of the 4,500 more images (14.1 MB of floats) are visible.
        const Measured kept_small = eval(dir, 500, int8, {"DCS_KEPT_BATCHES_MB=256"});
        const Measured kept_large = eval(dir, 5000, int8, {"DCS_KEPT_BATCHES_MB=256"});
        EXPECT_GT(kept_large.peak - kept_small.peak, 8e6) << kept_small.peak << " -> " << kept_large.peak;
    }
}

}  // namespace
