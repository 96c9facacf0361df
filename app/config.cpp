#include "app/config.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include "common/error.hpp"

namespace dcs {
namespace {

namespace fs = std::filesystem;

// The schema: every key the config accepts, by section. Unknown keys are checked against these.
const std::vector<std::string> kTopKeys{"model", "dataset", "compression", "search", "runtime", "output"};
const std::vector<std::string> kModelKeys{"path", "preprocess"};
const std::vector<std::string> kPreprocessKeys{"scale", "mean", "std"};
const std::vector<std::string> kDatasetKeys{"format", "images",  "labels",      "hdf5",       "file", "root",
                                            "classes", "resize", "crop", "metric", "calibration", "validation", "test"};
const std::vector<std::string> kHdf5Keys{"file", "images", "labels"};
const std::vector<std::string> kSubsetKeys{"offset", "count"};
const std::vector<std::string> kCompressionKeys{"weight_bits",     "prune_ratios", "granularity", "scheme",
                                                "pruning",         "method",       "weight_clip", "activation_bits",
                                                "calibration",     "bias_correction", "layers",
                                                "rounding"};
const std::vector<std::string> kLayerKeys{"match", "weight_bits", "prune_ratios"};
const std::vector<std::string> kSearchKeys{"algorithm",         "population", "offspring", "generations",
                                           "seed",              "max_accuracy_drop", "objectives",
                                           "max_evaluations",   "stagnation_generations", "early_stop"};
const std::vector<std::string> kRuntimeKeys{"memory_limit"};
const std::vector<std::string> kOutputKeys{"path"};

/// Sections whose keys may be suggested when a key is given in the wrong place.
const std::vector<std::pair<std::string, const std::vector<std::string>*>> kSections{
    {"model", &kModelKeys},           {"model.preprocess", &kPreprocessKeys}, {"dataset", &kDatasetKeys},
    {"dataset.hdf5", &kHdf5Keys},     {"compression", &kCompressionKeys},    {"search", &kSearchKeys},
    {"runtime", &kRuntimeKeys},       {"output", &kOutputKeys}};

std::string lower(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(const std::string& a, const std::string& b) {
    const size_t n = a.size(), m = b.size();
    std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
    for (size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (size_t i = 1; i <= n; ++i) {
        for (size_t j = 1; j <= m; ++j) {
            const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[n][m];
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
    return s;
}

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    const size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

/// A value as shown after "got": the scalar's text, or the node in YAML flow style.
std::string describe(const YAML::Node& node) {
    if (!node.IsDefined() || node.IsNull()) return "an empty value";
    std::string text;
    if (node.IsScalar()) {
        text = node.Scalar();
        if (text.empty()) return "\"\"";
    } else {
        YAML::Emitter e;
        e.SetMapFormat(YAML::Flow);
        e.SetSeqFormat(YAML::Flow);
        e << node;
        text = std::string(node.IsSequence() ? "a list " : "a map ") + e.c_str();
    }
    for (char& ch : text) {
        if (ch == '\n' || ch == '\r') ch = ' ';  // messages are one line
    }
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    return text;
}

/// One value of the config with where it came from.
struct Field {
    YAML::Node value;
    std::string key;  ///< full key path, e.g. "search.population" or "compression.weight_bits[2]"
    int line = 0;     ///< 1-based line of the value; 0 when unknown
    int key_line = 0;  ///< 1-based line of its key (list elements: of the list)
};

/// The checked entries of one YAML map.
struct Fields {
    std::string key;  ///< the map's own key path ("" for the top level)
    int line = 0;     ///< where the map starts
    std::map<std::string, Field> entries;

    const Field* get(const std::string& name) const {
        const auto it = entries.find(name);
        return it == entries.end() ? nullptr : &it->second;
    }
    std::string child(const std::string& name) const { return key.empty() ? name : key + "." + name; }
};

/// Builds typed config values from YAML nodes, with file and line in every message.
class Reader {
public:
    Reader(std::string file, fs::path dir) : file_(std::move(file)), dir_(std::move(dir)) {}

    [[noreturn]] void fail(int line, const std::string& key, const std::string& what) const {
        std::string msg = file_;
        if (line > 0) msg += " line " + std::to_string(line);
        msg += ": ";
        if (!key.empty()) msg += key + ": ";
        throw InputError(msg + what);
    }

    [[noreturn]] void expected(const Field& f, const std::string& what) const {
        fail(f.line, f.key, "must be " + what + ", got " + describe(f.value));
    }

    /// Checks that `map` is a map (or empty) and that every key is known and given once.
    Fields fields(const YAML::Node& map, const std::string& key, int line, const std::vector<std::string>& known) const {
        Fields out;
        out.key = key;
        out.line = line;
        if (!map.IsDefined() || map.IsNull()) return out;
        if (!map.IsMap()) {
            if (key.empty()) {
                fail(line_of(map, line), "",
                     "the top level must be a map of sections (" + join(kTopKeys) + "), got " + describe(map));
            }
            expected(Field{map, key, line_of(map, line), line}, "a map");
        }
        out.line = line_of(map, line);
        for (auto it = map.begin(); it != map.end(); ++it) {
            const YAML::Node k = it->first;  // copies: the iterator hands out a temporary pair
            const int kline = line_of(k, out.line);
            if (!k.IsScalar()) fail(kline, key, "keys must be plain names, got " + describe(k));
            const std::string name = k.Scalar();
            const std::string path = out.child(name);
            if (std::find(known.begin(), known.end(), name) == known.end()) {
                fail(kline, path, "unknown key" + hint(name, known));
            }
            if (const Field* first = out.get(name)) {
                fail(kline, path, "duplicate key (first given on line " + std::to_string(first->key_line) + ")");
            }
            const YAML::Node v = it->second;
            out.entries[name] = Field{v, path, (v.IsDefined() && !v.IsNull()) ? line_of(v, kline) : kline, kline};
        }
        return out;
    }

    Fields sub(const Fields& parent, const std::string& name, const std::vector<std::string>& known) const {
        const Field* f = parent.get(name);
        if (!f) return Fields{parent.child(name), parent.line, {}};
        return fields(f->value, f->key, f->line, known);
    }

    const Field& required(const Fields& m, const std::string& name) const {
        const Field* f = m.get(name);
        if (!f) fail(m.line, m.child(name), "required key is missing");
        return *f;
    }

    std::string to_string(const Field& f, const std::string& what = "a non-empty string") const {
        if (!f.value.IsScalar() || f.value.Scalar().empty()) expected(f, what);
        return f.value.Scalar();
    }

    std::string to_path(const Field& f) const {
        const fs::path p(to_string(f, "a non-empty file path"));
        return (p.is_absolute() ? p : dir_ / p).lexically_normal().string();
    }

    int64_t to_int(const Field& f, const std::string& what) const {
        if (!f.value.IsScalar()) expected(f, what);
        const std::string s = trim(f.value.Scalar());
        if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+')) {
            expected(f, what);
        }
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (*end != '\0') expected(f, what);
        if (errno == ERANGE) expected(f, what + " (the value is out of range)");
        return v;
    }

    /// An integer in [lo, hi]; `what` describes the valid values.
    int64_t to_int(const Field& f, int64_t lo, int64_t hi, const std::string& what) const {
        const int64_t v = to_int(f, what);
        if (v < lo || v > hi) expected(f, what);
        return v;
    }

    double to_double(const Field& f, const std::string& what) const {
        if (!f.value.IsScalar()) expected(f, what);
        const std::string s = trim(f.value.Scalar());
        if (s.empty() || s.find_first_of("xXnNiI") != std::string::npos) expected(f, what);  // no hex, nan, inf
        errno = 0;
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (*end != '\0' || errno == ERANGE || !std::isfinite(v)) expected(f, what);
        return v;
    }

    bool to_bool(const Field& f) const {
        const std::string what = "true or false";
        if (!f.value.IsScalar()) expected(f, what);
        const std::string s = lower(trim(f.value.Scalar()));
        if (s == "true" || s == "yes" || s == "on") return true;
        if (s == "false" || s == "no" || s == "off") return false;
        expected(f, what);
    }

    template <class E>
    E to_enum(const Field& f, const std::vector<std::pair<std::string, E>>& table) const {
        std::vector<std::string> names;
        for (const auto& [name, value] : table) names.push_back(name);
        std::string what = "one of " + join(names, ", ");
        if (f.value.IsScalar()) {
            const std::string s = trim(f.value.Scalar());
            for (const auto& [name, value] : table) {
                if (s == name) return value;
            }
            fail(f.line, f.key, "must be " + what + ", got " + describe(f.value) + hint(s, names));
        }
        expected(f, what);
    }

    /// The elements of a list, each with its own key path and line.
    std::vector<Field> to_list(const Field& f, const std::string& what) const {
        if (!f.value.IsSequence()) expected(f, what);
        std::vector<Field> out;
        size_t i = 0;
        for (const YAML::Node& e : f.value) {
            out.push_back(Field{e, f.key + "[" + std::to_string(i++) + "]",
                                (e.IsDefined() && !e.IsNull()) ? line_of(e, f.line) : f.line, f.line});
        }
        return out;
    }

    std::vector<int> to_bits_list(const Field& f) const {
        const auto items = to_list(f, "a non-empty list of bit-widths in 1..8, e.g. [4, 8]");
        if (items.empty()) expected(f, "a non-empty list of bit-widths in 1..8, e.g. [4, 8]");
        std::vector<int> out;
        for (const Field& e : items) {
            const int v = static_cast<int>(to_int(e, 1, 8, "an integer bit-width in 1..8"));
            if (std::find(out.begin(), out.end(), v) != out.end()) {
                fail(e.line, e.key, "duplicate value " + std::to_string(v) + "; entries must be unique, got " +
                                        describe(f.value));
            }
            out.push_back(v);
        }
        return out;
    }

    std::vector<double> to_ratio_list(const Field& f) const {
        const std::string what = "a non-empty list of prune ratios in [0, 1), e.g. [0.0, 0.5]";
        const auto items = to_list(f, what);
        if (items.empty()) expected(f, what);
        std::vector<double> out;
        for (const Field& e : items) {
            const std::string ewhat = "a number in [0, 1) (the fraction of weights set to zero)";
            const double v = to_double(e, ewhat);
            if (!(v >= 0.0 && v < 1.0)) expected(e, ewhat);
            if (std::find(out.begin(), out.end(), v) != out.end()) {
                fail(e.line, e.key, "duplicate value " + e.value.Scalar() + "; entries must be unique, got " +
                                        describe(f.value));
            }
            out.push_back(v);
        }
        return out;
    }

    const std::string& file() const { return file_; }

private:
    static int line_of(const YAML::Node& n, int fallback) {
        const YAML::Mark m = n.Mark();
        return m.line >= 0 ? m.line + 1 : fallback;
    }

    static std::string hint(const std::string& word, const std::vector<std::string>& known) {
        const std::string near = nearest_word(word, known);
        if (!near.empty()) return "; did you mean '" + near + "'?";
        // A key given in the wrong section, e.g. `population` at the top level.
        for (const auto& [section, keys] : kSections) {
            if (keys != &known && std::find(keys->begin(), keys->end(), word) != keys->end()) {
                return "; did you mean '" + section + "." + word + "'?";
            }
        }
        return "; expected one of " + join(known);
    }

    std::string file_;
    fs::path dir_;
};

Subset parse_subset(const Reader& r, const Fields& parent, const std::string& name, Subset s) {
    const Fields m = r.sub(parent, name, kSubsetKeys);
    if (const Field* f = m.get("offset")) {
        s.offset = r.to_int(*f, 0, std::numeric_limits<int64_t>::max(), "an integer >= 0 (the first sample)");
    }
    if (const Field* f = m.get("count")) {
        s.count = r.to_int(*f, 1, std::numeric_limits<int64_t>::max(), "an integer >= 1 (the number of samples)");
    }
    return s;
}

void parse_model(const Reader& r, const Fields& top, ModelConfig& model) {
    if (!top.get("model")) r.fail(0, "model", "required section is missing (it needs at least model.path)");
    const Fields m = r.sub(top, "model", kModelKeys);
    model.path = r.to_path(r.required(m, "path"));
    const Fields pre = r.sub(m, "preprocess", kPreprocessKeys);
    Preprocess& p = model.preprocess;
    if (const Field* f = pre.get("scale")) {
        const double v = r.to_double(*f, "a number > 0");
        if (!(v > 0.0) || v > std::numeric_limits<float>::max()) r.expected(*f, "a number > 0");
        p.scale = static_cast<float>(v);
    }
    for (const char* name : {"mean", "std"}) {
        const Field* f = pre.get(name);
        if (!f) continue;
        const bool is_std = std::strcmp(name, "std") == 0;
        const std::string what = std::string("a non-empty list of numbers") + (is_std ? " > 0" : "") +
                                 ", one per channel or one for all, e.g. [0.5]";
        const auto items = r.to_list(*f, what);
        if (items.empty()) r.expected(*f, what);
        std::vector<float> values;
        for (const Field& e : items) {
            const std::string ewhat = is_std ? "a number > 0" : "a number";
            const double v = r.to_double(e, ewhat);
            if ((is_std && !(v > 0.0)) || std::fabs(v) > std::numeric_limits<float>::max()) r.expected(e, ewhat);
            values.push_back(static_cast<float>(v));
        }
        (is_std ? p.std : p.mean) = std::move(values);
    }
    try {
        check_preprocess(p, 0, "model.preprocess");
    } catch (const InputError& e) {
        r.fail(pre.line, "", e.what());
    }
}

/// The dataset keys each format reads (besides format, metric and the subsets).
const std::vector<std::pair<DatasetFormat, std::vector<std::string>>> kFormatKeys{
    {DatasetFormat::Idx, {"images", "labels"}},
    {DatasetFormat::Hdf5, {"hdf5"}},
    {DatasetFormat::Npy, {"images", "labels", "file"}},
    {DatasetFormat::Folder, {"root", "classes", "resize", "crop"}},
};

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && lower(s.substr(s.size() - tail.size())) == tail;
}

/// The format the keys given imply when dataset.format is absent.
DatasetFormat implied_format(const Reader& r, const Fields& m) {
    if (const Field* h = m.get("hdf5")) {
        // Without a format the keys given decide it, unless they contradict each other.
        if (m.get("images") || m.get("labels")) {
            r.fail(h->line, h->key,
                   "given together with dataset.images/labels; use either the IDX files (format: idx) or "
                   "dataset.hdf5 (format: hdf5)");
        }
        return DatasetFormat::Hdf5;
    }
    if (m.get("root")) return DatasetFormat::Folder;
    const Field* img = m.get("images");
    if (m.get("file") || (img && img->value.IsScalar() && ends_with(img->value.Scalar(), ".npy")))
        return DatasetFormat::Npy;
    return DatasetFormat::Idx;
}

void parse_folder(const Reader& r, const Fields& m, DatasetConfig& ds) {
    ds.root = r.to_path(r.required(m, "root"));
    if (const Field* f = m.get("classes")) {
        const std::string what = "a non-empty list of class folder names, e.g. [cat, dog]";
        const auto items = r.to_list(*f, what);
        if (items.empty()) r.expected(*f, what);
        for (const Field& e : items) {
            const std::string name = r.to_string(e, "a class folder name");
            if (std::find(ds.classes.begin(), ds.classes.end(), name) != ds.classes.end())
                r.fail(e.line, e.key, "duplicate class '" + name + "'");
            ds.classes.push_back(name);
        }
    }
    const int64_t kMaxSide = 1 << 16;
    if (const Field* f = m.get("resize"))
        ds.image.resize = r.to_int(*f, 1, kMaxSide, "an integer in 1..65536 (the shorter side after resizing, pixels)");
    if (const Field* f = m.get("crop")) {
        const std::string what = "an integer or [height, width] in 1..65536 (the centre crop, pixels)";
        if (f->value.IsSequence()) {
            const auto items = r.to_list(*f, what);
            if (items.size() != 2) r.expected(*f, what);
            ds.image.crop_h = r.to_int(items[0], 1, kMaxSide, what);
            ds.image.crop_w = r.to_int(items[1], 1, kMaxSide, what);
        } else {
            ds.image.crop_h = ds.image.crop_w = r.to_int(*f, 1, kMaxSide, what);
        }
    }
}

void parse_dataset(const Reader& r, const Fields& top, Config& cfg) {
    DatasetConfig& ds = cfg.dataset;
    if (!top.get("dataset")) r.fail(0, "dataset", "required section is missing (it needs the image and label files)");
    const Fields m = r.sub(top, "dataset", kDatasetKeys);
    if (const Field* f = m.get("format")) {
        ds.format = r.to_enum<DatasetFormat>(*f, {{"idx", DatasetFormat::Idx},
                                                  {"hdf5", DatasetFormat::Hdf5},
                                                  {"npy", DatasetFormat::Npy},
                                                  {"folder", DatasetFormat::Folder}});
    } else {
        ds.format = implied_format(r, m);
    }
    const char* format = dataset_format_name(ds.format);
    // Keys of other formats are errors: they would be silently ignored.
    for (const auto& [fmt, keys] : kFormatKeys) {
        if (fmt == ds.format) continue;
        for (const std::string& key : keys) {
            const Field* f = m.get(key);
            const auto& mine = std::find_if(kFormatKeys.begin(), kFormatKeys.end(),
                                            [&](const auto& row) { return row.first == ds.format; })->second;
            if (!f || std::find(mine.begin(), mine.end(), key) != mine.end()) continue;
            if (ds.format == DatasetFormat::Hdf5 && (key == "images" || key == "labels"))
                r.fail(f->line, f->key,
                       "not used with dataset.format: hdf5; give the dataset path inside the file as dataset.hdf5." +
                           key);
            std::string users;
            for (const auto& [other, other_keys] : kFormatKeys)
                if (std::find(other_keys.begin(), other_keys.end(), key) != other_keys.end())
                    users += std::string(users.empty() ? "" : " or ") + dataset_format_name(other);
            r.fail(f->line, f->key, "only used with dataset.format: " + users + ", but dataset.format is " + format);
        }
    }
    switch (ds.format) {
    case DatasetFormat::Idx:
        ds.images = r.to_path(r.required(m, "images"));
        ds.labels = r.to_path(r.required(m, "labels"));
        break;
    case DatasetFormat::Hdf5: {
        if (!m.get("hdf5")) r.fail(m.line, "dataset.hdf5.file", "required key is missing (dataset.format is hdf5)");
        const Fields h = r.sub(m, "hdf5", kHdf5Keys);
        ds.file = r.to_path(r.required(h, "file"));
        ds.images = "/images";
        ds.labels = "/labels";
        if (const Field* f = h.get("images")) ds.images = r.to_string(*f, "a dataset path inside the file, e.g. /images");
        if (const Field* f = h.get("labels")) ds.labels = r.to_string(*f, "a dataset path inside the file, e.g. /labels");
        break;
    }
    case DatasetFormat::Npy:
        if (const Field* f = m.get("file")) {
            // An .npz archive: images and labels name arrays in it.
            ds.file = r.to_path(*f);
            if (const Field* i = m.get("images")) ds.images = r.to_string(*i, "the name of the image array in dataset.file");
            if (const Field* l = m.get("labels")) ds.labels = r.to_string(*l, "the name of the label array in dataset.file");
        } else {
            const Field& i = r.required(m, "images");
            if (i.value.IsScalar() && ends_with(i.value.Scalar(), ".npz"))
                r.fail(i.line, i.key,
                       "an .npz archive goes in dataset.file, with dataset.images/labels naming its arrays "
                       "(default images, labels)");
            ds.images = r.to_path(i);
            if (const Field* l = m.get("labels")) ds.labels = r.to_path(*l);
        }
        break;
    case DatasetFormat::Folder: parse_folder(r, m, ds); break;
    }
    if (const Field* f = m.get("metric"))
        {
        std::vector<std::pair<std::string, Metric>> table;
        for (Metric x : {Metric::Top1, Metric::Top5, Metric::Agreement}) table.emplace_back(metric_name(x), x);
        cfg.metric = r.to_enum<Metric>(*f, table);
    }
    ds.calibration = parse_subset(r, m, "calibration", ds.calibration);
    ds.validation = parse_subset(r, m, "validation", ds.validation);

    const Subset& c = ds.calibration;
    const Subset& v = ds.validation;
    // Offsets are >= 0 and counts >= 1 here; saturate so that huge values cannot overflow.
    const auto end_of = [](const Subset& s) {
        return s.offset > std::numeric_limits<int64_t>::max() - s.count ? std::numeric_limits<int64_t>::max()
                                                                         : s.offset + s.count;
    };
    const auto range = [&](const Subset& s) {
        return "samples " + std::to_string(s.offset) + ".." + std::to_string(end_of(s) - 1);
    };
    if (const Field* f = m.get("test")) {
        // The held-out subset: it must share no sample with what calibrates or selects.
        const Subset t = parse_subset(r, m, "test", Subset{0, 0});
        for (const char* key : {"offset", "count"})
            if (!r.sub(m, "test", kSubsetKeys).get(key))
                r.fail(f->line, std::string("dataset.test.") + key,
                       "required key is missing (dataset.test needs both)");
        for (const auto& [name, other] :
             {std::pair<const char*, const Subset*>{"calibration", &c}, {"validation", &v}}) {
            if (std::max(t.offset, other->offset) < std::min(end_of(t), end_of(*other)))
                r.fail(f->line, "dataset.test",
                       range(t) + " overlap dataset." + name + " (" + range(*other) +
                           "); the test subset must be held out from calibration and validation");
        }
        cfg.test = t;
    }
    const int64_t lo = std::max(c.offset, v.offset);
    const int64_t hi = std::min(end_of(c), end_of(v));
    if (lo < hi) {
        cfg.warnings.push_back(r.file() + ": dataset.calibration (" + range(c) + ") and dataset.validation (" +
                               range(v) + ") overlap in " + std::to_string(hi - lo) +
                               " samples; accuracy is then partly measured on calibration data");
    }
}

void parse_compression(const Reader& r, const Fields& top, Config& cfg) {
    CompressionConfig& c = cfg.compression;
    const Fields m = r.sub(top, "compression", kCompressionKeys);
    if (const Field* f = m.get("weight_bits")) c.weight_bits = r.to_bits_list(*f);
    if (const Field* f = m.get("prune_ratios")) c.prune_ratios = r.to_ratio_list(*f);
    using namespace compress;
    if (const Field* f = m.get("granularity")) {
        c.weight.granularity = r.to_enum<Granularity>(
            *f, {{"per_channel", Granularity::PerChannel}, {"per_tensor", Granularity::PerTensor}});
    }
    if (const Field* f = m.get("scheme")) {
        c.weight.scheme = r.to_enum<Scheme>(*f, {{"symmetric", Scheme::Symmetric}, {"asymmetric", Scheme::Asymmetric}});
    }
    if (const Field* f = m.get("pruning")) {
        c.weight.pruning =
            r.to_enum<Pruning>(*f, {{"unstructured", Pruning::Unstructured}, {"filter", Pruning::Filter}});
    }
    if (const Field* f = m.get("method")) {
        c.weight.method = r.to_enum<Method>(*f, {{"quantize", Method::Quantize}, {"cluster", Method::Cluster}});
    }
    if (const Field* f = m.get("weight_clip")) {
        c.weight.clip = r.to_enum<WeightClip>(*f, {{"maxabs", WeightClip::MaxAbs}, {"mse", WeightClip::Mse}});
    }
    if (const Field* f = m.get("rounding")) {
        c.weight.rounding = r.to_enum<Rounding>(*f, {{"nearest", Rounding::Nearest}, {"gptq", Rounding::Gptq}});
    }
    if (const Field* f = m.get("activation_bits")) {
        const int64_t v = r.to_int(*f, "8 (the only activation bit-width supported for now)");
        if (v != 8) r.expected(*f, "8 (the only activation bit-width supported for now)");
        c.activation_bits = 8;
    }
    if (const Field* f = m.get("calibration")) {
        c.calibration = r.to_enum<Calibration>(
            *f, {{"minmax", Calibration::MinMax}, {"percentile", Calibration::Percentile}, {"mse", Calibration::Mse}});
    }
    if (const Field* f = m.get("bias_correction")) c.bias_correction = r.to_bool(*f);
    if (const Field* f = m.get("layers")) {
        const std::string what = "a list of overrides, e.g. [{match: \"fc3*\", weight_bits: [8]}]";
        for (const Field& e : r.to_list(*f, what)) {
            if (!e.value.IsMap()) r.expected(e, "a map with match and weight_bits and/or prune_ratios");
            const Fields lm = r.fields(e.value, e.key, e.line, kLayerKeys);
            LayerOverride o;
            o.match = r.to_string(r.required(lm, "match"), "a layer name or glob, e.g. \"fc3*\"");
            if (const Field* b = lm.get("weight_bits")) o.weight_bits = r.to_bits_list(*b);
            if (const Field* p = lm.get("prune_ratios")) o.prune_ratios = r.to_ratio_list(*p);
            if (o.weight_bits.empty() && o.prune_ratios.empty()) {
                cfg.warnings.push_back(r.file() + " line " + std::to_string(lm.line) + ": " + e.key +
                                       ": has neither weight_bits nor prune_ratios, so it changes nothing");
            }
            c.layers.push_back(std::move(o));
        }
    }
}

void parse_search(const Reader& r, const Fields& top, SearchConfig& s) {
    const Fields m = r.sub(top, "search", kSearchKeys);
    constexpr int64_t int_max = std::numeric_limits<int>::max();
    if (const Field* f = m.get("algorithm")) {
        s.algorithm = r.to_enum<std::string>(*f, {{"nsga2", "nsga2"}, {"random", "random"}});
    }
    if (const Field* f = m.get("population")) {
        const std::string what = "an even number >= 4";
        const int64_t v = r.to_int(*f, 4, int_max, what);
        if (v % 2 != 0) r.expected(*f, what);
        s.population = static_cast<int>(v);
    }
    if (const Field* f = m.get("offspring")) {
        s.offspring = static_cast<int>(r.to_int(*f, 0, 1 << 20, "an integer >= 0 (0: as many as the population)"));
        if (s.offspring == 1) r.expected(*f, "an integer >= 2, or 0 for as many as the population");
    }
    if (const Field* f = m.get("generations")) {
        s.generations = static_cast<int>(r.to_int(*f, 1, int_max, "an integer >= 1"));
    }
    if (const Field* f = m.get("seed")) {
        s.seed = static_cast<uint64_t>(r.to_int(*f, 0, std::numeric_limits<int64_t>::max(), "an integer >= 0"));
    }
    if (const Field* f = m.get("max_accuracy_drop")) {
        const std::string what = "a number of percentage points in [0, 100]";
        const double v = r.to_double(*f, what);
        if (!(v >= 0.0 && v <= 100.0)) r.expected(*f, what);
        s.max_accuracy_drop = v;
    }
    if (const Field* f = m.get("objectives")) {
        const std::string what = "a list of objectives from accuracy, size, bops, latency, e.g. [accuracy, size]";
        s.objectives.clear();
        for (const Field& e : r.to_list(*f, what)) {
            const Objective o = r.to_enum<Objective>(e, {{"accuracy", Objective::Accuracy},
                                                         {"size", Objective::Size},
                                                         {"bops", Objective::Bops},
                                                         {"latency", Objective::Latency}});
            if (std::find(s.objectives.begin(), s.objectives.end(), o) != s.objectives.end()) {
                r.fail(e.line, e.key, std::string("duplicate objective ") + objective_name(o) + ", got " + describe(f->value));
            }
            s.objectives.push_back(o);
        }
        for (Objective needed : {Objective::Accuracy, Objective::Size}) {
            if (std::find(s.objectives.begin(), s.objectives.end(), needed) == s.objectives.end()) {
                r.fail(f->line, f->key, "must contain accuracy and size, got " + describe(f->value));
            }
        }
    }
    if (const Field* f = m.get("max_evaluations")) {
        s.max_evaluations =
            r.to_int(*f, 0, std::numeric_limits<int64_t>::max(), "an integer >= 0 (0: no budget beyond generations)");
    }
    if (const Field* f = m.get("stagnation_generations")) {
        s.stagnation_generations = static_cast<int>(r.to_int(*f, 0, int_max, "an integer >= 0 (0: off)"));
    }
    if (const Field* f = m.get("early_stop")) s.early_stop = r.to_bool(*f);
}

}  // namespace

std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates) {
    const std::string w = lower(word);
    std::string best;
    size_t best_d = std::numeric_limits<size_t>::max();
    for (const std::string& c : candidates) {
        const size_t d = edit_distance(w, lower(c));
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    // A likely typo: at most a third of the letters wrong (but always allow 2), and not the whole word.
    const size_t limit = std::max<size_t>(2, w.size() / 3);
    if (!best.empty() && best_d <= limit && best_d < std::max(w.size(), best.size())) return best;
    // A known word with something appended or cut off, e.g. "hdf5_file" for "hdf5".
    for (const std::string& c : candidates) {
        const std::string lc = lower(c);
        const size_t common = std::min(w.size(), lc.size());
        if (common >= 4 && w.compare(0, common, lc, 0, common) == 0) return c;
    }
    return "";
}

const char* objective_name(Objective objective) {
    switch (objective) {
    case Objective::Accuracy: return "accuracy";
    case Objective::Size: return "size";
    case Objective::Bops: return "bops";
    case Objective::Latency: return "latency";
    }
    return "unknown";
}

namespace {

/// Counts YAML documents without building them.
class DocumentCounter : public YAML::EventHandler {
public:
    int documents = 0;
    int second_line = 0;  ///< 1-based line where the second document starts
    void OnDocumentStart(const YAML::Mark& mark) override {
        if (++documents == 2) second_line = mark.line >= 0 ? mark.line + 1 : 1;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

/// The line where a second YAML document starts, or 0 when `text` holds at most one. Reads at most
/// two documents: yaml-cpp 0.7's LoadAll never returns on some malformed input (",#", found by
/// fuzz/fuzz_config.cpp). Throws YAML::Exception on syntax errors.
int second_document_line(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentCounter counter;
    for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
    }
    return counter.second_line;
}

}  // namespace

Config parse_config(const std::string& text, const std::string& path) {
    Config cfg;
    cfg.file = path;
    cfg.text = text;
    std::error_code ec;
    fs::path dir = fs::path(path).parent_path();
    dir = fs::absolute(dir.empty() ? fs::path(".") : dir, ec);
    if (ec) dir = fs::path(path).parent_path();
    const Reader r(path, dir.lexically_normal());

    std::vector<YAML::Node> docs;
    int second_doc_line = 0;
    try {
        second_doc_line = second_document_line(text);
        docs.push_back(YAML::Load(text));
    } catch (const YAML::Exception& e) {
        std::string msg = e.msg;
        for (char& ch : msg) {
            if (ch == '\n') ch = ' ';
        }
        r.fail(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "YAML syntax error: " + msg);
    }
    if (docs.empty() || docs[0].IsNull()) {
        r.fail(0, "", "the config is empty; expected a map with at least model.path and the dataset files");
    }
    if (second_doc_line > 0) r.fail(second_doc_line, "", "expected one YAML document, found more (separated by ---)");
    try {
        const Fields top = r.fields(docs[0], "", 1, kTopKeys);
        parse_model(r, top, cfg.model);
        parse_dataset(r, top, cfg);
        parse_compression(r, top, cfg);
        parse_search(r, top, cfg.search);
        const Fields rt = r.sub(top, "runtime", kRuntimeKeys);
        if (const Field* f = rt.get("memory_limit"))
            cfg.runtime.memory_limit_mb =
                r.to_int(*f, 256, int64_t(1) << 30, "an integer >= 256 (MiB of memory per process for evaluation)");
        const Fields out = r.sub(top, "output", kOutputKeys);
        if (const Field* f = out.get("path")) {
            cfg.output.path = r.to_path(*f);
        } else {
            cfg.output.path = (dir / "results.h5").lexically_normal().string();
        }
    } catch (const YAML::Exception& e) {
        // Not expected (values are read as scalars), but never let a yaml-cpp exception escape.
        r.fail(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", e.msg);
    }
    return cfg;
}

Config load_config(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw InputError(path + ": no such config file");
    if (fs::is_directory(st)) throw InputError(path + ": is a directory, expected a YAML config file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot open for reading (" + std::strerror(errno) + ")");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw InputError(path + ": read error");
    return parse_config(text.str(), path);
}

void check_subsets(const Config& cfg, const Dataset& data) {
    data.check_subset(cfg.dataset.calibration, "dataset.calibration");
    data.check_subset(cfg.dataset.validation, "dataset.validation");
    if (cfg.test) data.check_subset(*cfg.test, "dataset.test");
}

}  // namespace dcs
