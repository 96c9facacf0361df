#pragma once
/// Image datasets (IDX raw/gzip, HDF5, NumPy arrays, image folders), labelled or not: preprocessing,
/// subsets and batches.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace dcs {

/// x = (pixel * scale - mean[c]) / std[c]; mean/std have one entry per channel, or one for all.
struct Preprocess {
    float scale = 1.0f / 255.0f;
    std::vector<float> mean{0.0f};
    std::vector<float> std{1.0f};
};

/// Checks mean/std against the number of image channels: each has 1 entry or `channels` entries;
/// every std is > 0 and every value finite; scale is finite and > 0. `channels` <= 0 means not yet
/// known (then only mean and std with more than one entry each must agree in length).
/// `key` names the setting in messages (default "model.preprocess"). Throws InputError.
void check_preprocess(const Preprocess& pre, int64_t channels, const std::string& key = "model.preprocess");

/// A contiguous range of sample indices.
struct Subset {
    int64_t offset = 0;
    int64_t count = 0;
};

enum class DatasetFormat { Idx, Hdf5, Npy, Folder };

/// The config's word for a format ("idx", "hdf5", "npy", "folder").
const char* dataset_format_name(DatasetFormat f);

/// How images of an image folder become the model's input: torchvision's Resize(resize) and
/// CenterCrop((crop_h, crop_w)), then gray or colour to `channels`. Set from the model's input unless
/// the config gives it (see load_data in app/).
struct ImageGeometry {
    int64_t resize = 0;  ///< shorter side after resizing; 0: none
    int64_t crop_h = 0, crop_w = 0;
    int64_t channels = 0;  ///< 1 or 3
};

struct DatasetConfig {
    DatasetFormat format = DatasetFormat::Idx;
    /// idx: path of the image file; hdf5: dataset path inside `file` (default /images); npy: a .npy
    /// file, or with `file` a .npz archive, the array's name in it (default images)
    std::string images;
    /// as `images`, for the labels; npy: optional (no labels: the metric is agreement with fp32)
    std::string labels;
    std::string file;  ///< hdf5: the .h5 file; npy: a .npz archive (empty for .npy files)
    std::string root;  ///< folder: the root holding one subfolder per class
    std::vector<std::string> classes;  ///< folder: the class subfolders in label order (default: all, sorted)
    ImageGeometry image;               ///< folder: resize, crop and channels
    Subset calibration{0, 512};
    Subset validation{512, 2000};
};

/// Images held in their stored type (uint8 or float32), NCHW (N×H×W files get C = 1), in memory or
/// memory-mapped, with one label each or none.
class Dataset {
public:
    /// Loads and checks the files (headers against real file length, image/label counts).
    /// `used`: the subsets that will be read; formats that decode (folder) decode only these, the
    /// others hold every sample. Empty: every sample.
    /// Throws InputError naming the file and what was expected.
    static Dataset load(const DatasetConfig& cfg, const std::vector<Subset>& used = {});

    int64_t size() const { return count_; }
    int64_t channels() const { return c_; }
    int64_t height() const { return h_; }
    int64_t width() const { return w_; }
    /// One per sample; -1 for every sample of an unlabelled dataset.
    const std::vector<int64_t>& labels() const { return labels_; }
    bool has_labels() const { return labelled_; }
    /// True when the images are stored as float32 (else uint8).
    bool is_float() const { return is_float_; }

    /// Where the images and labels came from, as named in messages ("<memory>" when built from memory).
    const std::string& images_source() const { return images_source_; }
    const std::string& labels_source() const { return labels_source_; }
    void set_sources(std::string images, std::string labels);

    /// Throws InputError if any label is outside [0, num_classes) or a subset lies outside the data.
    /// check_labels names the label source, the first offending index and value, and num_classes.
    void check_labels(int64_t num_classes) const;
    /// `key` names the subset in messages, e.g. "dataset.validation": offset >= 0, count >= 1 and
    /// offset + count <= size() are required.
    void check_subset(const Subset& s, const std::string& key) const;

    /// Preprocessed float batch [count, C, H, W] of samples offset..offset+count-1.
    /// Throws InputError if the range lies outside the data or `pre` does not fit the channel count.
    Tensor batch(int64_t offset, int64_t count, const Preprocess& pre) const;

    // Construction from memory (tests, generated data). Throw std::invalid_argument when the
    // vector lengths do not match n*c*h*w pixels and n labels, or a dimension is < 1.
    static Dataset from_u8(int64_t n, int64_t c, int64_t h, int64_t w, std::vector<uint8_t> pixels,
                           std::vector<int64_t> labels);
    static Dataset from_f32(int64_t n, int64_t c, int64_t h, int64_t w, std::vector<float> pixels,
                            std::vector<int64_t> labels);
    /// Images stored elsewhere (a memory-mapped array, decoded images) and kept alive by `owner`:
    /// `pixels` holds the stored images, uint8 or float32 (`is_float`), C×H×W each. `labels`: n, or
    /// empty for an unlabelled dataset. `slots`: empty when sample i is stored image i; else n entries,
    /// sample i's stored image or -1 when it was not loaded (batch() refuses it).
    static Dataset from_storage(int64_t n, int64_t c, int64_t h, int64_t w, bool is_float,
                                std::shared_ptr<const void> owner, const void* pixels, std::vector<int64_t> labels,
                                std::vector<int64_t> slots = {});

private:
    int64_t count_ = 0, c_ = 1, h_ = 0, w_ = 0;
    bool is_float_ = false;
    bool labelled_ = true;
    std::shared_ptr<const void> owner_;  ///< keeps the stored images alive
    const uint8_t* u8_ = nullptr;
    const float* f32_ = nullptr;
    std::vector<int64_t> slots_;  ///< empty: identity
    std::vector<int64_t> labels_;
    std::string images_source_ = "<memory>";
    std::string labels_source_ = "<memory>";
};

}  // namespace dcs
