#include "runtime/evaluate.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "common/error.hpp"
#include "runtime/reference_executor.hpp"

namespace dcs {

ModelIo check_model_io(const Graph& graph, const Dataset& data, const std::string& model_path) {
    if (graph.inputs.size() != 1)
        throw InputError(model_path + ": the model has " + std::to_string(graph.inputs.size()) +
                         " inputs, expected one image input");
    if (graph.outputs.size() < 1) throw InputError(model_path + ": the model has no outputs");
    const auto& in = graph.inputs[0];
    std::vector<int64_t> image{data.channels(), data.height(), data.width()};
    ModelIo io;
    if (in.shape.size() == 4) {
        io.input_shape.assign(in.shape.begin() + 1, in.shape.end());
        if (io.input_shape != image)
            throw InputError(model_path + ": input '" + in.name + "' expects images " + shape_str(io.input_shape) +
                             " (C, H, W), the dataset has " + shape_str(image));
    } else if (in.shape.size() == 2) {
        io.input_shape = {in.shape[1]};
        if (in.shape[1] != Tensor::numel_of(image))
            throw InputError(model_path + ": input '" + in.name + "' expects " + std::to_string(in.shape[1]) +
                             " values per sample, the dataset's images " + shape_str(image) + " have " +
                             std::to_string(Tensor::numel_of(image)));
    } else {
        throw InputError(model_path + ": input '" + in.name + "' has shape " + shape_str(in.shape) +
                         ", expected [N, C, H, W] or [N, features]");
    }
    auto shapes = graph.infer_shapes(2);
    const auto& out = shapes.at(graph.outputs[0]);
    if (out.size() != 2 || out[0] != 2)
        throw InputError(model_path + ": output '" + graph.outputs[0] + "' has shape " + shape_str(out) +
                         " for a batch of 2, expected [N, classes]");
    io.num_classes = out[1];
    return io;
}

size_t SubsetEvaluator::kept_bytes(size_t requested) {
    if (const char* e = std::getenv("DCS_KEPT_BATCHES_MB")) {
        const long long v = std::atoll(e);
        if (v >= 0) return static_cast<size_t>(v) << 20;
    }
    return requested;
}

SubsetEvaluator::SubsetEvaluator(const Graph& graph, const Dataset& data, const Subset& subset,
                                 const Preprocess& pre, const ModelIo& io, int64_t batch_size, Metric metric,
                                 size_t max_kept_bytes)
    : graph_(graph), data_(data), pre_(pre), input_shape_(io.input_shape), metric_(metric) {
    size_t bytes = 0;
    for (int64_t off = subset.offset; off < subset.offset + subset.count; off += batch_size) {
        const int64_t n = std::min(batch_size, subset.offset + subset.count - off);
        ranges_.emplace_back(off, n);
        labels_.emplace_back(data.labels().begin() + off, data.labels().begin() + off + n);
        bytes += static_cast<size_t>(n * Tensor::numel_of(input_shape_)) * sizeof(float);
    }
    kept_ = bytes <= kept_bytes(max_kept_bytes);
    if (kept_) batches();
}

Tensor SubsetEvaluator::make_batch(size_t i) const {
    const auto [off, n] = ranges_.at(i);
    Tensor b = data_.batch(off, n, pre_);
    std::vector<int64_t> shape{n};
    shape.insert(shape.end(), input_shape_.begin(), input_shape_.end());
    b.shape = shape;
    return b;
}

const std::vector<Tensor>& SubsetEvaluator::batches() const {
    if (batches_.size() != ranges_.size())
        for (size_t i = batches_.size(); i < ranges_.size(); ++i) batches_.push_back(make_batch(i));
    return batches_;
}

std::vector<int64_t> SubsetEvaluator::batch_sizes() const {
    std::vector<int64_t> out;
    for (const auto& r : ranges_) out.push_back(r.second);
    return out;
}

void SubsetEvaluator::each_batch(const std::function<bool(const Tensor&, size_t)>& f) const {
    for (size_t i = 0; i < ranges_.size(); ++i) {
        if (i < batches_.size()) {
            if (!f(batches_[i], i)) return;
        } else {
            const Tensor b = make_batch(i);
            if (!f(b, i)) return;
        }
    }
}

std::vector<int64_t> argmax_rows(const Tensor& logits) {
    const int64_t n = logits.shape.at(0), k = logits.numel() / std::max<int64_t>(n, 1);
    std::vector<int64_t> out(n);
    for (int64_t i = 0; i < n; ++i) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; ++j)
            if (logits.data[i * k + j] > logits.data[i * k + best]) best = j;
        out[i] = best;
    }
    return out;
}

std::vector<bool> in_top_k(const Tensor& logits, const std::vector<int64_t>& labels, int64_t k) {
    const int64_t n = logits.shape.at(0), classes = logits.numel() / std::max<int64_t>(n, 1);
    std::vector<bool> out(static_cast<size_t>(n), false);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t y = labels.at(static_cast<size_t>(i));
        if (y < 0 || y >= classes) continue;
        const float* row = logits.data.data() + i * classes;
        int64_t ahead = 0;  // classes ranked before y
        for (int64_t j = 0; j < classes && ahead < k; ++j) ahead += row[j] > row[y] || (row[j] == row[y] && j < y);
        out[static_cast<size_t>(i)] = ahead < k;
    }
    return out;
}

void SubsetEvaluator::label_with(const std::function<Tensor(const Tensor&)>& forward) {
    each_batch([&](const Tensor& x, size_t b) {
        labels_[b] = argmax_rows(forward(x));
        return true;
    });
}

EvalResult SubsetEvaluator::run_reference(const std::map<std::string, Tensor>* overrides) const {
    ReferenceExecutor ex(graph_);
    return run([&](const Tensor& x) { return ex.run({x}, overrides).at(0); });
}

bool clearly_below(int64_t correct, int64_t seen, int64_t total, double threshold) {
    if (seen <= 0 || seen >= total) return false;
    const double z = 4.0, n = static_cast<double>(seen), p = static_cast<double>(correct) / n;
    const double upper =
        (p + z * z / (2 * n) + z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n);
    return (static_cast<double>(correct) + upper * static_cast<double>(total - seen)) / static_cast<double>(total) <
           threshold;
}

EvalResult SubsetEvaluator::run(const std::function<Tensor(const Tensor&)>& forward,
                                const std::function<bool(const EvalResult&, int64_t)>& stop) const {
    EvalResult r;
    double seconds = 0.0;
    int64_t total = 0;
    for (const auto& range : ranges_) total += range.second;
    each_batch([&](const Tensor& x, size_t b) {
        auto t0 = std::chrono::steady_clock::now();
        Tensor out = forward(x);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (metric_ == Metric::Top5) {
            for (bool hit : in_top_k(out, labels_[b], 5)) r.correct += hit;
        } else {
            const auto pred = argmax_rows(out);
            for (size_t i = 0; i < pred.size(); ++i) r.correct += pred[i] == labels_[b][i];
        }
        r.samples += static_cast<int64_t>(labels_[b].size());
        ++r.batches;
        if (stop && b + 1 < ranges_.size() && stop(r, total)) r.stopped = true;
        return !r.stopped;
    });
    r.seconds = seconds;
    r.accuracy = r.samples ? static_cast<double>(r.correct) / static_cast<double>(r.samples) : 0.0;
    r.images_per_second = r.seconds > 0 ? static_cast<double>(r.samples) / r.seconds : 0.0;
    return r;
}

int64_t fp32_size_bytes(const Graph& graph) {
    int64_t n = 0;
    for (const auto& kv : graph.initializers)
        if (kv.second.dtype == DType::f32) n += kv.second.numel();
    return 4 * n;
}

}  // namespace dcs
