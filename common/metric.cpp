#include "common/metric.hpp"

namespace dcs {
namespace {

struct MetricRow {
    Metric metric;
    const char* name;
    const char* label;
};

constexpr MetricRow kMetrics[] = {
    {Metric::Top1, "top1", "accuracy"},
    {Metric::Top5, "top5", "top-5 accuracy"},
    {Metric::Agreement, "agreement", "agreement with fp32"},
};

const MetricRow& row(Metric m) {
    for (const MetricRow& r : kMetrics)
        if (r.metric == m) return r;
    return kMetrics[0];
}

}  // namespace

const char* metric_name(Metric m) {
    return row(m).name;
}
const char* metric_label(Metric m) {
    return row(m).label;
}

std::optional<Metric> metric_from_name(const std::string& word) {
    for (const MetricRow& r : kMetrics)
        if (word == r.name) return r.metric;
    return std::nullopt;
}

}  // namespace dcs
