#include "app/load_data.hpp"

#include <iostream>
#include <utility>

#include "common/error.hpp"

namespace dcs {
namespace {

/// The image geometry of an image folder: the config's resize and crop, the rest from the model's input.
ImageGeometry folder_geometry(const Config& cfg, const Graph& graph) {
    ImageGeometry g = cfg.dataset.image;
    if (graph.inputs.size() != 1) return g;  // check_model_io names the problem
    const auto& shape = graph.inputs[0].shape;
    if (shape.size() == 4) {
        g.channels = shape[1];
        if (g.crop_h == 0) {
            g.crop_h = shape[2];
            g.crop_w = shape[3];
        }
    } else if (shape.size() == 2) {
        // A flat input of C·H·W values: the crop must be given, the channels follow from it.
        if (g.crop_h == 0)
            throw InputError(cfg.file + ": dataset.crop: required for model " + cfg.model.path + ", whose input '" +
                             graph.inputs[0].name + "' is flat (" + std::to_string(shape[1]) +
                             " values): give the image size, e.g. crop: [28, 28]");
        const int64_t plane = g.crop_h * g.crop_w;
        g.channels = shape[1] % plane == 0 ? shape[1] / plane : 0;
    }
    if (g.channels != 1 && g.channels != 3)
        throw InputError(cfg.file +
                         ": dataset.format: folder gives gray (1 channel) or colour (3 channel) images, but "
                         "model " +
                         cfg.model.path + " takes " + std::to_string(g.channels) + " channels" +
                         (shape.size() == 2 ? " at dataset.crop" : ""));
    if (g.crop_h < 1 || g.crop_w < 1)
        throw InputError(cfg.file + ": dataset.crop: required for model " + cfg.model.path + ", whose input '" +
                         graph.inputs[0].name + "' has no fixed height and width: give the image size, e.g. crop: 224");
    if (g.resize == 0 && g.crop_h == g.crop_w) g.resize = g.crop_h;
    return g;
}

}  // namespace

LoadedData load_data(const Config& cfg, const Graph& graph, std::vector<std::string>* warnings) {
    DatasetConfig dc = cfg.dataset;
    if (dc.format == DatasetFormat::Folder) dc.image = folder_geometry(cfg, graph);
    std::vector<Subset> used{dc.calibration, dc.validation};
    if (cfg.test) used.push_back(*cfg.test);
    LoadedData l;
    l.data = Dataset::load(dc, used);
    l.io = check_model_io(graph, l.data, cfg.model.path);
    l.data.check_labels(l.io.num_classes);
    check_subsets(cfg, l.data);
    l.metric = cfg.metric.value_or(Metric::Top1);
    if (!l.data.has_labels()) {
        if (cfg.metric && *cfg.metric != Metric::Agreement)
            throw InputError(cfg.file + ": dataset.metric: " + metric_name(*cfg.metric) + " needs labels, but " +
                             l.data.images_source() + " has none; give labels or use metric: agreement");
        l.metric = Metric::Agreement;
        const std::string w = l.data.images_source() +
                              " has no labels: accuracy is top-1 agreement with the fp32 model's own predictions";
        if (warnings)
            warnings->push_back(w);
        else
            std::cerr << "dcsearch: warning: " << w << "\n";
    }
    return l;
}

EvaluatorOptions evaluator_options(const Config& cfg, Metric metric) {
    EvaluatorOptions o;
    o.calibration = cfg.dataset.calibration;
    o.bias_correction = cfg.compression.bias_correction;
    o.calibration_method = cfg.compression.calibration;
    o.metric = metric;
    const size_t limit = static_cast<size_t>(cfg.runtime.memory_limit_mb) << 20;
    o.activation_bytes = limit / 4;
    o.kept_batch_bytes = limit / 8;
    o.cache_bytes = limit / 8;
    return o;
}

}  // namespace dcs
