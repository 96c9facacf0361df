#pragma once
/// The dataset of a config, loaded for its model and checked: one home for what eval, search and
/// export need before they evaluate.
#include "app/config.hpp"
#include "common/metric.hpp"
#include "runtime/candidate.hpp"
#include "runtime/dataset.hpp"
#include "runtime/evaluate.hpp"
#include "runtime/graph.hpp"

namespace dcs {

struct LoadedData {
    Dataset data;
    ModelIo io;
    /// dataset.metric, or top1; agreement when the dataset has no labels.
    Metric metric = Metric::Top1;
};

/// Loads cfg.dataset for `graph`: an image folder is resized and cropped to the model's input (unless
/// dataset.resize/crop say otherwise) and only the configured subsets (calibration, validation, test)
/// are decoded. Checks the model's input against the images, the labels against its classes, the
/// subsets against the data, and the metric against the labels. A dataset without labels is evaluated
/// by agreement with the fp32 model; a warning says so (into `warnings` when given, else on stderr).
/// Throws InputError naming the file or key.
LoadedData load_data(const Config& cfg, const Graph& graph, std::vector<std::string>* warnings = nullptr);

/// The evaluator settings of a config, as eval, search, export and apply evaluate: the calibration
/// subset and method, bias correction, the metric, and the memory bounds of runtime.memory_limit.
EvaluatorOptions evaluator_options(const Config& cfg, Metric metric);

}  // namespace dcs
