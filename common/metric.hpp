#pragma once
/// What a candidate's "accuracy" measures (dataset.metric): shared by the evaluator, the results file
/// and the report.
#include <optional>
#include <string>

namespace dcs {

enum class Metric {
    Top1,       ///< the largest logit is the label
    Top5,       ///< the label is among the five largest logits (ties: the lower class index ranks first)
    Agreement,  ///< top-1 against the fp32 model's own top-1 predictions on the same images (no labels needed)
};

/// "top1", "top5", "agreement": the config's words, also written to results files and JSON.
const char* metric_name(Metric m);
/// How the metric reads in sentences and table headers: "accuracy", "top-5 accuracy", "agreement with fp32".
const char* metric_label(Metric m);
/// The metric named `word` (metric_name), or nothing.
std::optional<Metric> metric_from_name(const std::string& word);

}  // namespace dcs
