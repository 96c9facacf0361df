#include "runtime/dnnl_executor.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>

#include "runtime/dnnl/plan.hpp"

namespace dcs {

namespace {

void check_input(const Graph& g, const QuantPlan& plan, const Tensor& input) {
    const auto& name = g.inputs.at(0).name;
    const auto& sample = plan.sample_shapes.at(name);
    if (input.dtype != DType::f32 || input.rank() != static_cast<int64_t>(sample.size()) || input.shape[0] < 1 ||
        !std::equal(sample.begin() + 1, sample.end(), input.shape.begin() + 1) ||
        static_cast<int64_t>(input.data.size()) != input.numel())
        throw InputError("input '" + name + "' " + shape_str(input.shape) + " does not match the model's " +
                         shape_str(sample) + " (any batch size >= 1)");
    const auto& declared = g.inputs.at(0).shape;
    if (!declared.empty() && declared[0] > 0 && declared[0] != input.shape[0])
        throw InputError("input '" + name + "' has a fixed batch size of " + std::to_string(declared[0]) + ", got " +
                         std::to_string(input.shape[0]));
}

/// Runs the plan on `input` (its batch of images); the output is in P.output.
void execute(Plan& P, const float* input) {
    void* h = const_cast<float*>(input);
    P.input.set_data_handle(h);
    for (auto& a : P.input_aliases) a.set_data_handle(h);
    for (auto& st : P.steps) {
        if (st.has_prim) st.prim.execute(P.strm, st.args);
        else st.host();
    }
    P.strm.wait();
}

/// The sub-batch size of int8 runs: the network runs over sub-batches of this many images (the last
/// one smaller) when a batch is larger, so that the activations of the step with the most bytes
/// (input, residual and output per image) fit the L2 caches of the OMP threads, each working on its
/// share of the sub-batch: threads x L2 / bytes, rounded down to a power of two, at least 16 per
/// thread. Results do not depend on it (images are independent). Measured, images per second of
/// `bench_runtime --int8-only --batch N` (one pinned thread / two), N = 16, 32, 64, 256: the survey's
/// mbv2 (100 KB a step at 28x28) 15.2k, 15.3k, 15.2k, 11.2k / 28.7k, 29.3k, 26.6k, 22.3k; dwsep
/// (19 KB) 98k, 95k, 102k, 90k / 152k, 176k, 194k, 185k; but lenet5 (5.5 KB) 246k, 254k, 272k, 266k
/// / 376k, 441k, 469k, 530k: whole batches where they fit. DCS_SUB_BATCH=N sets it (0: whole batches).
/// `threads`: the threads sharing each sub-batch (1 when every thread runs its own image stream).
int64_t choose_sub_batch(const QuantPlan& plan, int threads) {
    if (const char* e = std::getenv("DCS_SUB_BATCH")) {
        const long long v = std::atoll(e);
        return v > 0 ? static_cast<int64_t>(v) : std::numeric_limits<int64_t>::max();
    }
    auto bytes = [&plan](const std::string& v) -> int64_t {
        if (v.empty() || !plan.sample_shapes.count(v) || !plan.values.count(v)) return 0;
        const auto& sh = plan.sample_shapes.at(v);
        int64_t n = 1;
        for (size_t i = 1; i < sh.size(); ++i) n *= sh[i];
        return n * (is8(plan.values.at(v).type) ? 1 : 4);
    };
    int64_t w = 1;
    for (const auto& st : plan.steps) w = std::max(w, bytes(st.input) + bytes(st.sum_input) + bytes(st.output));
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 <= 0) l2 = 1L << 20;
    const int64_t t = std::max(1, threads);
    const int64_t fit = t * static_cast<int64_t>(l2) / w;
    int64_t c = 1;
    while (c * 2 <= fit) c *= 2;
    return std::max(c, 16 * t);
}

/// The bytes of activation buffers a plan of the fp32 executor (and of calibration, whose buffers are
/// not shared) may hold: batches run in chunks of as many images as fit (Impl::chunk_for_budget), so
/// that memory does not grow with the batch size. ResNet-50 at 224x224 needs about 10 MB an image with
/// shared buffers (a chunk of 51 images in 512 MiB) and 50 MB without (10). DCS_ACTIVATION_MB=N (MiB)
/// overrides `requested`; 0 requested: 512 MiB.
size_t activation_budget(size_t requested) {
    if (const char* e = std::getenv("DCS_ACTIVATION_MB")) {
        const long long v = std::atoll(e);
        if (v > 0) return static_cast<size_t>(v) << 20;
    }
    return requested > 0 ? requested : size_t(512) << 20;
}

/// The image streams of int8 runs: OMP_NUM_THREADS by default, each thread taking whole sub-batches
/// through the network alone (Impl::split). With every thread in every step instead, each step ends
/// with a barrier, and on a shared machine one of the threads is often late: two threads gave 1.4-1.6x
/// one thread's speed on the median batch of mobile's host steps, while two single-threaded processes
/// each kept their solo speed (docs/performance.md). DCS_STREAMS=N sets the count (1: every thread
/// in every step).
int choose_streams() {
    if (const char* e = std::getenv("DCS_STREAMS")) {
        const long long v = std::atoll(e);
        if (v >= 1) return static_cast<int>(std::min<long long>(v, 1024));
    }
    return std::max(1, omp_get_max_threads());
}

}  // namespace

DnnlExecutor::DnnlExecutor(const Graph& graph, Mode mode, int64_t batch_size, size_t activation_bytes) {
    if (batch_size < 1) throw InputError("batch size must be >= 1, got " + std::to_string(batch_size));
    if (graph.inputs.size() != 1)
        throw InputError("the oneDNN executor runs models with one input, this one has " +
                         std::to_string(graph.inputs.size()));
    impl_ = std::make_unique<Impl>(graph, mode, batch_size, plan_graph(graph, mode == Mode::Int8));
    impl_->activation_bytes = activation_budget(activation_bytes);
    if (mode == Mode::Fp32) {
        try {
            impl_->plan_for(std::min(batch_size, impl_->chunk_for_budget(impl_->activation_bytes)));
        } catch (const dnnl::error& e) {
            throw UnsupportedError(std::string("oneDNN: ") + e.what());
        }
    } else {
        for (const auto& kv : impl_->model.layer_info)
            impl_->default_weights[kv.first] =
                quantize_weight_int8(graph.initializers.at(kv.second.weight), kv.second.out_axis);
    }
}

DnnlExecutor::~DnnlExecutor() = default;
DnnlExecutor::DnnlExecutor(DnnlExecutor&&) noexcept = default;
DnnlExecutor& DnnlExecutor::operator=(DnnlExecutor&&) noexcept = default;

DnnlExecutor::Mode DnnlExecutor::mode() const { return impl_->mode; }

const QuantizedModel& DnnlExecutor::quantized_model() const {
    for (const auto& [name, pl] : impl_->loaded)
        if (pl->codes_dropped)
            throw std::logic_error("DnnlExecutor::quantized_model: layer '" + name +
                                   "' was prepared without keeping its codes (set_keep_codes(false))");
    impl_->refresh_layers();
    return impl_->model;
}

void DnnlExecutor::calibrate(const std::vector<Tensor>& batches, const compress::CalibrationSpec& spec) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::calibrate: only in int8 mode");
    if (batches.empty()) throw InputError("calibration needs at least one batch");
    // The fp32 twin of the int8 plan: same fusions, so it materialises the same values.
    QuantPlan fp = I.model.plan;
    fp.int8 = false;
    for (auto& st : fp.steps) st.int8 = false;
    for (auto& kv : fp.values) kv.second.type = QType::F32;
    Impl cal(I.graph, Mode::Fp32, I.batch_size, fp);
    cal.share_buffers = false;
    // Every value of a chunk is read after it runs: chunks bound the memory of the unshared buffers.
    const int64_t chunk = cal.chunk_for_budget(I.activation_bytes);
    std::map<std::string, compress::ActivationObserver> observed;
    // Per layer: sums of its input per input channel (Conv) or per column of K (Gemm / MatMul).
    std::map<std::string, std::pair<std::vector<double>, int64_t>> sums;
    std::vector<std::string> names;
    for (const auto& in : I.graph.inputs) names.push_back(in.name);
    for (const auto& st : fp.steps) names.push_back(st.output);
    std::vector<std::pair<const float*, int64_t>> chunks;  // (first image, images)
    for (const auto& b : batches) {
        check_input(I.graph, fp, b);
        const size_t image = b.data.size() / static_cast<size_t>(b.shape[0]);
        for (int64_t at = 0; at < b.shape[0]; at += chunk)
            chunks.emplace_back(b.data.data() + static_cast<size_t>(at) * image, std::min(chunk, b.shape[0] - at));
    }
    for (const auto& [images, count] : chunks) {
        Plan& P = cal.plan_for(count);
        execute(P, images);
        for (const auto& name : names) {
            const memory& m = P.vals.at(name);
            const int64_t n = static_cast<int64_t>(m.get_desc().get_size() / sizeof(float));
            observed[name].observe(static_cast<const float*>(m.get_data_handle()), n);
        }
        for (const auto& st : fp.steps) {
            if (!st.layer) continue;
            const LayerInfo& li = I.model.layer_info.at(st.node->name);
            const memory& m = P.vals.at(st.input);
            const memory::desc md = m.get_desc();
            const memory::dims dims = md.dims();
            const auto* strides = md.data.format_desc.blocking.strides;
            const size_t r = dims.size();
            int64_t per = 1, spatial = 1;
            for (size_t d = 1; d < r; ++d) per *= dims[d];
            for (size_t d = 2; d < r; ++d) spatial *= dims[d];
            const bool conv = st.node->op == OpKind::Conv;
            const int64_t buckets = conv ? dims[1] : li.weight_shape[1 - li.out_axis];
            auto& acc = sums[st.node->name];
            acc.first.resize(buckets, 0.0);
            acc.second += dims[0] * (per / buckets);
            const float* p = static_cast<const float*>(m.get_data_handle());
            std::vector<int64_t> idx(r, 0);
            for (int64_t nb = 0; nb < dims[0]; ++nb) {
                std::fill(idx.begin(), idx.end(), 0);
                for (int64_t f = 0; f < per; ++f) {
                    int64_t off = nb * strides[0];
                    for (size_t d = 1; d < r; ++d) off += idx[d] * strides[d];
                    acc.first[conv ? f / spatial : f % buckets] += p[off];
                    for (size_t d = r; d-- > 1;) {
                        if (++idx[d] < dims[d]) break;
                        idx[d] = 0;
                    }
                }
            }
        }
    }
    I.input_means.clear();
    for (const auto& kv : sums) {
        std::vector<float> mean(kv.second.first.size());
        for (size_t i = 0; i < mean.size(); ++i)
            mean[i] = static_cast<float>(kv.second.first[i] / static_cast<double>(std::max<int64_t>(kv.second.second, 1)));
        I.input_means[kv.first] = std::move(mean);
    }
    assign_scales(I.model.plan, observed, spec);
    I.calibrated = true;
    I.streams = choose_streams();
    I.sub_batch = choose_sub_batch(I.model.plan, I.streams > 1 ? 1 : omp_get_max_threads());
    ++I.generation;
    I.plans.clear();
    I.weight_cache.clear();
    I.host_layers.clear();
    I.loaded.clear();
    set_weights({});
}

void DnnlExecutor::set_weights(const std::map<std::string, Int8LayerWeights>& layers) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::set_weights: only in int8 mode");
    if (!I.calibrated) throw std::logic_error("DnnlExecutor::set_weights: calibrate() first");
    for (const auto& kv : layers)
        if (!I.model.layer_info.count(kv.first))
            throw InputError("set_weights: '" + kv.first + "' is not a compressible layer of the model");
    std::vector<Prepared> next;
    for (const auto& st : I.model.plan.steps) {
        if (!st.layer) continue;
        auto it = layers.find(st.node->name);
        next.push_back(I.prepare(st, it != layers.end() ? it->second : I.default_weights.at(st.node->name)));
    }
    I.load(next);
    I.refresh_layers();
}

DnnlExecutor::Prepared DnnlExecutor::prepare_layer(const std::string& layer, Int8LayerWeights weights) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::prepare_layer: only in int8 mode");
    if (!I.calibrated) throw std::logic_error("DnnlExecutor::prepare_layer: calibrate() first");
    for (const auto& st : I.model.plan.steps)
        if (st.layer && st.node->name == layer) return I.prepare(st, std::move(weights));
    throw InputError("prepare_layer: '" + layer + "' is not a compressible layer of the model");
}

size_t DnnlExecutor::prepared_bytes(const PreparedLayer& layer) { return layer.bytes; }

void DnnlExecutor::set_keep_codes(bool keep) { impl_->keep_codes = keep; }

void DnnlExecutor::load(const std::vector<Prepared>& layers) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::load: only in int8 mode");
    if (!I.calibrated) throw std::logic_error("DnnlExecutor::load: calibrate() first");
    I.load(layers);
}

void DnnlExecutor::set_bias_correction(bool on) {
    Impl& I = *impl_;
    if (I.mode != Mode::Int8) throw std::logic_error("DnnlExecutor::set_bias_correction: only in int8 mode");
    if (on != I.bias_correction) ++I.generation;
    I.bias_correction = on;
}

int64_t DnnlExecutor::sub_batch() const { return impl_->sub_batch; }

int DnnlExecutor::streams() const { return impl_->streams; }

Tensor DnnlExecutor::run(const Tensor& input) {
    Impl& I = *impl_;
    if (I.mode == Mode::Int8 && !I.calibrated) throw std::logic_error("DnnlExecutor::run: calibrate() first");
    check_input(I.graph, I.model.plan, input);
    const auto& out_name = I.graph.outputs.at(0);
    std::vector<int64_t> shape = I.model.plan.sample_shapes.at(out_name);
    const int64_t nb = input.shape[0];
    shape[0] = nb;
    Tensor out = Tensor::zeros(shape);
    const size_t in_per = input.data.size() / static_cast<size_t>(nb), out_per = out.data.size() / static_cast<size_t>(nb);
    I.plans_for(nb);  // made and synced here: the streams below only run them
    const Impl::Split sp = I.split(nb);
    const int64_t chunks = (nb + sp.chunk - 1) / sp.chunk;
    auto run_chunk = [&](int64_t i, int stream) {
        const int64_t off = i * sp.chunk, n = std::min(sp.chunk, nb - off);
        Plan& P = *I.plans.at({n, stream});
        execute(P, input.data.data() + static_cast<size_t>(off) * in_per);
        std::memcpy(out.data.data() + static_cast<size_t>(off) * out_per, P.output.get_data_handle(),
                    static_cast<size_t>(n) * out_per * sizeof(float));
    };
    if (sp.streams == 1) {
        for (int64_t i = 0; i < chunks; ++i) run_chunk(i, -1);
        return out;
    }
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel num_threads(sp.streams)
    {
        const int stream = omp_get_thread_num();
        omp_set_num_threads(1);  // this thread's steps (and oneDNN's) run on it alone
        try {
            for (int64_t i = next++; i < chunks; i = next++) run_chunk(i, stream);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            next = chunks;
        }
    }
    if (error) std::rethrow_exception(error);
    return out;
}

void DnnlExecutor::prepare(int64_t batch_size) {
    Impl& I = *impl_;
    if (I.mode == Mode::Int8 && !I.calibrated) throw std::logic_error("DnnlExecutor::prepare: calibrate() first");
    if (batch_size < 1) throw InputError("batch size must be >= 1, got " + std::to_string(batch_size));
    I.plans_for(batch_size);
}

std::vector<std::string> DnnlExecutor::implementations(int64_t batch_size) {
    Impl& I = *impl_;
    if (I.mode == Mode::Int8 && !I.calibrated) throw std::logic_error("DnnlExecutor::implementations: calibrate() first");
    const Plan& P = *I.plans_for(batch_size).at(0);
    std::vector<std::string> out;
    for (const auto& st : P.steps) out.push_back(st.what);
    out.insert(out.end(), P.weight_reorders.begin(), P.weight_reorders.end());
    return out;
}

}  // namespace dcs
