// Tests of runtime/kernels/: every row of the kernel table against its plain-loop reference, bit for
// bit, on random shapes the row serves, at every CPU feature cap under which it runs (so the variants
// a kernel picks by cpu::has() are covered: the VNNI / VBMI paths and the portable loops); rows whose
// features this CPU lacks are skipped, naming the feature. Also the table's reasons and switches.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/cpu_features.hpp"
#include "common/error.hpp"
#include "runtime/kernels/kernel_table.hpp"

using namespace dcs;
using namespace dcs::kernels;

namespace {

int64_t uniform(std::mt19937& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
bool chance(std::mt19937& rng, double p) { return std::bernoulli_distribution(p)(rng); }

/// A 2-D window over `h` x `w` with square kernel k, stride s and pads (output at least 1 x 1).
Window window(int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw, std::vector<int64_t> pb,
              std::vector<int64_t> pe) {
    Window win;
    win.in = {h, w};
    win.kernel = {kh, kw};
    win.strides = {sh, sw};
    win.dilations = {1, 1};
    win.pad_begin = std::move(pb);
    win.pad_end = std::move(pe);
    for (size_t i = 0; i < 2; ++i) win.out.push_back((win.in[i] + win.pad_begin[i] + win.pad_end[i] - win.kernel[i]) / win.strides[i] + 1);
    return win;
}

/// A random layer of the row's kind, biased towards the shapes the kernels serve (one input channel,
/// depthwise, 1x1 stride 1, few channels); the caller keeps those the row serves.
LayerDesc random_layer(LayerKind kind, std::mt19937& rng) {
    LayerDesc d;
    d.kind = kind;
    const int64_t nb = uniform(rng, 1, 3);
    const QType types8[] = {QType::U8, QType::S8};
    if (kind != LayerKind::Conv) {
        const bool two = chance(rng, 0.3);  // the 2x2 stride-2 window (max: the VBMI path)
        const int64_t c = two ? uniform(rng, 1, 16) : uniform(rng, 1, 200);
        const int64_t k = two ? 2 : uniform(rng, 1, 4), s = two ? 2 : uniform(rng, 1, 3);
        const int64_t h = uniform(rng, k, 16), w = uniform(rng, k, 16);
        const int64_t p = two ? 0 : uniform(rng, 0, k - 1);
        d.win = window(h, w, k, k, s, s, {p, p}, {p, p});
        d.xt = d.yt = types8[uniform(rng, 0, 1)];
        d.include_pad = kind == LayerKind::AvgPool && chance(rng, 0.5);
        d.xs = {nb, c, h, w};
        d.ys = {nb, c, d.win.out[0], d.win.out[1]};
        return d;
    }
    const bool dw = chance(rng, 0.3), pointwise = chance(rng, 0.3);
    const int64_t ic = chance(rng, 0.3) ? 1 : uniform(rng, 1, dw ? 150 : 40);
    const int64_t oc = dw ? ic : uniform(rng, 1, 40);
    const int64_t kh = pointwise ? 1 : uniform(rng, 1, 5), kw = pointwise ? 1 : uniform(rng, 1, dw ? 8 : 5);
    const int64_t sh = pointwise || chance(rng, 0.5) ? 1 : uniform(rng, 2, 3), sw = chance(rng, 0.7) ? sh : uniform(rng, 1, 3);
    const bool pad = !pointwise && chance(rng, 0.6);
    const std::vector<int64_t> pb = pad ? std::vector<int64_t>{uniform(rng, 0, kh - 1), uniform(rng, 0, kw - 1)}
                                        : std::vector<int64_t>{0, 0};
    const std::vector<int64_t> pe = pad ? std::vector<int64_t>{uniform(rng, 0, kh - 1), uniform(rng, 0, kw - 1)}
                                        : std::vector<int64_t>{0, 0};
    const int64_t h = uniform(rng, kh, 16), w = uniform(rng, kw, 40);
    d.win = window(h, w, kh, kw, sh, sw, pb, pe);
    d.group = dw ? ic : 1;
    d.ws = {oc, dw ? 1 : ic, kh, kw};
    d.xs = {nb, ic, h, w};
    d.ys = {nb, oc, d.win.out[0], d.win.out[1]};
    d.xt = types8[uniform(rng, 0, 1)];
    d.yt = chance(rng, 0.2) ? QType::F32 : types8[uniform(rng, 0, 1)];
    d.act = static_cast<QAct>(uniform(rng, 0, 2));
    d.sum = chance(rng, 0.3);
    d.rt = chance(rng, 0.3) ? QType::F32 : types8[uniform(rng, 0, 1)];
    return d;
}

/// Random candidate parameters for a convolution: codes, accumulator-unit biases, scales (some large
/// enough to saturate), Clip bounds, the residual's scale.
QLayer random_parameters(const LayerDesc& d, std::mt19937& rng) {
    QLayer q;
    if (d.kind != LayerKind::Conv) return q;
    const int64_t oc = d.ws[0];
    q.codes.resize(static_cast<size_t>(oc * d.ws[1] * d.ws[2] * d.ws[3]));
    for (auto& c : q.codes) c = static_cast<int8_t>(uniform(rng, -127, 127));
    const double big = chance(rng, 0.2) ? 1e6 : 1.0;
    for (int64_t o = 0; o < oc; ++o) {
        q.bias.push_back(static_cast<float>(uniform(rng, -3000, 3000)));
        q.out_scale.push_back(static_cast<float>(std::uniform_real_distribution<double>(1e-4, 0.05)(rng) * big));
    }
    q.act_lo = static_cast<float>(uniform(rng, -120, 10));
    q.act_hi = q.act_lo + static_cast<float>(uniform(rng, 0, 200));
    q.sum_scale = static_cast<float>(std::uniform_real_distribution<double>(0.1, 2.0)(rng));
    return q;
}

size_t type_bytes(QType t) { return t == QType::F32 ? 4 : 1; }

/// Random data of type t: 8-bit codes, or fp32 values in [-60, 60].
std::shared_ptr<void> random_data(QType t, size_t n, std::mt19937& rng) {
    auto buf = aligned_buffer(n * type_bytes(t) + 128);  // kernels may read a vector past the end
    if (t == QType::F32) {
        float* f = static_cast<float*>(buf.get());
        for (size_t i = 0; i < n; ++i) f[i] = static_cast<float>(std::uniform_real_distribution<double>(-60, 60)(rng));
    } else {
        uint8_t* b = static_cast<uint8_t*>(buf.get());
        for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(uniform(rng, 0, 255));
    }
    return buf;
}

int64_t numel(const std::vector<int64_t>& s) {
    int64_t n = 1;
    for (int64_t v : s) n *= v;
    return n;
}

/// The caps from the lowest to the highest (every level).
std::vector<cpu::Isa> caps() {
    std::vector<cpu::Isa> v;
    for (int i = 0; i < cpu::kIsaCount; ++i) v.push_back(static_cast<cpu::Isa>(i));
    return v;
}

class KernelTable : public testing::TestWithParam<std::string> {};

// The kernel against its reference on random shapes it serves, at every cap under which it runs.
TEST_P(KernelTable, MatchesItsReferenceBitForBit) {
    const KernelRow& row = *find_kernel(GetParam());
    const std::string why = unavailable(row);
    if (!why.empty()) GTEST_SKIP() << row.name << ": " << why;
    int cases = 0;
    for (cpu::Isa cap : caps()) {
        cpu::ScopedMaxIsa scoped(cap);
        if (!unavailable(row).empty()) continue;
        std::mt19937 rng(static_cast<unsigned>(17 + 31 * static_cast<int>(cap)));
        for (int k = 0, tries = 0; k < 40 && tries < 20000; ++tries) {
            const LayerDesc d = random_layer(row.kind, rng);
            if (!why_not(row, d).empty()) continue;
            ++k;
            ++cases;
            SCOPED_TRACE(std::string(row.name) + " cap " + cpu::name(cap) + " x " + std::to_string(d.xs[1]) + "x" +
                         std::to_string(d.xs[2]) + "x" + std::to_string(d.xs[3]) + " -> " + std::to_string(d.ys[1]) +
                         "x" + std::to_string(d.ys[2]) + "x" + std::to_string(d.ys[3]) + " kernel " +
                         std::to_string(d.win.kernel[0]) + "x" + std::to_string(d.win.kernel[1]) + " types " +
                         qtype_name(d.xt) + " -> " + qtype_name(d.yt) + (d.sum ? " + sum" : ""));
            const QLayer q = random_parameters(d, rng);
            const int64_t nb = d.xs[0];
            const auto x = random_data(d.xt, static_cast<size_t>(numel(d.xs)), rng);
            const auto res = d.sum ? random_data(d.rt, static_cast<size_t>(numel(d.ys)), rng) : nullptr;
            const size_t ybytes = static_cast<size_t>(numel(d.ys)) * type_bytes(d.yt);
            auto y = aligned_buffer(ybytes), yr = aligned_buffer(ybytes);
            std::memset(y.get(), 0x5a, ybytes);  // an output the kernel does not write shows
            std::memset(yr.get(), 0x5a, ybytes);
            const std::shared_ptr<HostLayer> kernel = row.make(d);
            EXPECT_EQ(kernel->impl().rfind(std::string("host:") + row.name, 0), 0u) << kernel->impl();
            kernel->fill(q);
            kernel->run(x.get(), y.get(), nb, res.get());
            row.reference(d, q, x.get(), yr.get(), nb, res.get());
            const auto* a = static_cast<const uint8_t*>(y.get());
            const auto* b = static_cast<const uint8_t*>(yr.get());
            EXPECT_EQ(std::vector<uint8_t>(a, a + ybytes), std::vector<uint8_t>(b, b + ybytes));
        }
    }
    EXPECT_GT(cases, 0) << "no random shape served";
}

std::vector<std::string> row_names() {
    std::vector<std::string> v;
    for (const auto& row : kernel_table()) v.push_back(row.name);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Rows, KernelTable, testing::ValuesIn(row_names()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

/// A 3 -> 8 3x3 convolution with a residual sum: every convolution row declines it.
LayerDesc conv_with_sum() {
    LayerDesc d;
    d.xs = {2, 3, 10, 10};
    d.ws = {8, 3, 3, 3};
    d.win = window(10, 10, 3, 3, 1, 1, {1, 1}, {1, 1});
    d.ys = {2, 8, 10, 10};
    d.xt = QType::U8;
    d.yt = QType::U8;
    d.sum = true;
    return d;
}

}  // namespace

// A shape each row must decline gets a reason; the table says which row serves a layer and why the
// rows before declined.
TEST(KernelTable, DecliningRowsSayWhy) {
    const LayerDesc conv = conv_with_sum();
    LayerDesc pool;
    pool.xs = pool.ys = {1, 4, 6, 6};
    pool.win = window(6, 6, 1, 1, 1, 1, {0, 0}, {0, 0});
    pool.xt = pool.yt = QType::F32;
    for (const auto& row : kernel_table()) {
        pool.kind = row.kind == LayerKind::Conv ? LayerKind::MaxPool : row.kind;
        const std::string why = row.declines(row.kind == LayerKind::Conv ? conv : pool);
        EXPECT_FALSE(why.empty()) << row.name;
    }
    EXPECT_EQ(find_kernel("conv_ic1")->declines(conv), "has a residual sum");
    LayerDesc plain = conv;
    plain.sum = false;
    EXPECT_EQ(find_kernel("conv_ic1")->declines(plain), "input channels 3 > 1");
    EXPECT_EQ(find_kernel("conv_dw")->declines(plain), "not depthwise");
    EXPECT_EQ(find_kernel("conv1x1_amx")->declines(plain), "kernel 3x3 is not 1x1");
    EXPECT_EQ(find_kernel("conv_vnni")->declines(plain), "");
    const Choice c = choose(plain);
    if (unavailable(*find_kernel("conv_vnni")).empty()) {
        ASSERT_NE(c.row, nullptr);
        EXPECT_STREQ(c.row->name, "conv_vnni");
        EXPECT_EQ(c.declined.find("conv_ic1: input channels 3 > 1; conv_dw: not depthwise; conv1x1_amx: "), 0u) << c.declined;
    }
    EXPECT_EQ(choose(conv).row, nullptr);  // oneDNN
}

// A cap below a row's features makes it unavailable, naming the first missing feature.
TEST(KernelTable, CapNamesTheMissingFeature) {
    cpu::ScopedMaxIsa cap(cpu::Isa::Avx512);
    EXPECT_EQ(unavailable(*find_kernel("conv_vnni")), "needs avx512_vnni");
    EXPECT_EQ(unavailable(*find_kernel("max_nhwc")), "");
    cpu::ScopedMaxIsa portable(cpu::Isa::Portable);
    EXPECT_EQ(unavailable(*find_kernel("conv_ic1")), "needs avx512");
}

// set_disabled_kernels (DCS_DISABLE_KERNELS): rows by name or all; an unknown name is an error.
TEST(KernelTable, DisabledKernels) {
    {
        ScopedDisabledKernels off("conv_vnni,max_nhwc");
        EXPECT_EQ(unavailable(*find_kernel("conv_vnni")), "disabled by DCS_DISABLE_KERNELS");
        EXPECT_EQ(unavailable(*find_kernel("max_nhwc")), "disabled by DCS_DISABLE_KERNELS");
        EXPECT_EQ(unavailable(*find_kernel("avg_nhwc")), "");
    }
    {
        ScopedDisabledKernels all("all");
        for (const auto& row : kernel_table()) EXPECT_EQ(unavailable(row), "disabled by DCS_DISABLE_KERNELS") << row.name;
    }
    EXPECT_THROW(set_disabled_kernels("conv_vnni,no_such_kernel"), InputError);
    EXPECT_EQ(unavailable(*find_kernel("avg_nhwc")), "");
}
