#include "runtime/image_folder.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

#include "common/error.hpp"

namespace dcs {
namespace {

namespace fs = std::filesystem;

/// Deeper class folders are refused: a symbolic link loop would otherwise recurse for ever.
constexpr int kMaxDepth = 64;

bool hidden(const fs::path& p) {
    const std::string name = p.filename().string();
    return !name.empty() && name[0] == '.';
}

bool has_image_extension(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

[[noreturn]] void not_an_image_name(const fs::path& p) {
    throw InputError(p.string() + ": not a .jpg, .jpeg or .png file (the folder format reads JPEG and PNG images "
                                  "only; remove the file or hide it with a leading '.')");
}

/// The entries of `dir` that are not hidden, split into directories (links followed) and other files, each
/// sorted by name in byte order.
void list_dir(const fs::path& dir, std::vector<fs::path>& dirs, std::vector<fs::path>& files) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    if (ec) throw InputError(dir.string() + ": cannot list directory (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
        if (ec) throw InputError(dir.string() + ": cannot list directory (" + ec.message() + ")");
        const fs::path& p = it->path();
        if (hidden(p)) continue;
        std::error_code sec;
        (fs::is_directory(it->status(sec)) ? dirs : files).push_back(p);
    }
    if (ec) throw InputError(dir.string() + ": cannot list directory (" + ec.message() + ")");
    const auto by_name = [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); };
    std::sort(dirs.begin(), dirs.end(), by_name);
    std::sort(files.begin(), files.end(), by_name);
}

/// Image files under `dir` in os.walk order sorted as ImageFolder sorts it: directories by path, files by
/// name within each.
void collect_class_files(const fs::path& dir, std::vector<std::pair<std::string, fs::path>>& out, int depth) {
    if (depth > kMaxDepth)
        throw InputError(dir.string() + ": folders nested more than " + std::to_string(kMaxDepth) +
                         " deep (a symbolic link loop?)");
    std::vector<fs::path> dirs, files;
    list_dir(dir, dirs, files);
    for (const fs::path& f : files) {
        if (!has_image_extension(f)) not_an_image_name(f);
        out.emplace_back(dir.string(), f);
    }
    for (const fs::path& d : dirs) collect_class_files(d, out, depth + 1);
}

std::vector<std::string> class_files(const fs::path& dir) {
    std::vector<std::pair<std::string, fs::path>> found;
    collect_class_files(dir, found, 0);
    // Stable: files of one directory are already sorted by name.
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    if (found.empty())
        throw InputError(dir.string() + ": class folder without any .jpg, .jpeg or .png image");
    std::vector<std::string> paths;
    paths.reserve(found.size());
    for (const auto& f : found) paths.push_back(f.second.string());
    return paths;
}

}  // namespace

ImageFolderIndex scan_image_folder(const std::string& root, const std::vector<std::string>& classes) {
    std::error_code ec;
    const fs::file_status st = fs::status(root, ec);
    if (ec || !fs::exists(st)) throw InputError(root + ": no such directory (dataset root)");
    if (!fs::is_directory(st)) throw InputError(root + ": not a directory (the dataset root must be a folder)");
    std::vector<fs::path> dirs, files;
    list_dir(root, dirs, files);
    std::vector<fs::path> top_images;
    for (const fs::path& f : files)
        if (has_image_extension(f)) top_images.push_back(f);

    ImageFolderIndex index;
    if (dirs.empty() && classes.empty()) {
        // Flat folder: unlabelled.
        for (const fs::path& f : files)
            if (!has_image_extension(f)) not_an_image_name(f);
        if (files.empty())
            throw InputError(root + ": no class subfolders and no .jpg, .jpeg or .png images (expected "
                                    "<root>/<class>/<image> or images directly in the root)");
        index.labelled = false;
        for (const fs::path& f : files) index.files.push_back(f.string());
        return index;
    }
    if (!top_images.empty())
        throw InputError(top_images.front().string() + ": image file at the top level next to class folders "
                                                       "(move it into a class folder, or hide it with a leading '.')");
    if (classes.empty()) {
        for (const fs::path& d : dirs) index.classes.push_back(d.filename().string());
    } else {
        std::set<std::string> seen;
        for (const std::string& name : classes) {
            if (!seen.insert(name).second) throw InputError(root + ": class '" + name + "' named twice (dataset.classes)");
            const fs::path d = fs::path(root) / name;
            if (name.empty() || !fs::is_directory(d, ec))
                throw InputError(d.string() + ": class folder '" + name + "' not found (dataset.classes)");
        }
        index.classes = classes;
    }
    for (size_t label = 0; label < index.classes.size(); ++label) {
        for (std::string& f : class_files(fs::path(root) / index.classes[label])) {
            index.files.push_back(std::move(f));
            index.labels.push_back(static_cast<int64_t>(label));
        }
    }
    return index;
}

void decode_images(const ImageFolderIndex& index, const std::vector<int64_t>& indices, const ImageTransform& t,
                   uint8_t* out, const std::function<void(int64_t, int64_t)>& progress, const JpegOptions& jpeg) {
    if (t.crop_h <= 0 || t.crop_w <= 0)
        throw std::invalid_argument("decode_images: crop_h and crop_w must be > 0 (one size for every image)");
    if (t.channels != 1 && t.channels != 3)
        throw std::invalid_argument("decode_images: channels must be 1 or 3, got " + std::to_string(t.channels));
    const int64_t n_files = static_cast<int64_t>(index.files.size());
    for (int64_t i : indices)
        if (i < 0 || i >= n_files)
            throw std::invalid_argument("decode_images: index " + std::to_string(i) + " out of range [0, " +
                                        std::to_string(n_files) + ")");
    const int64_t n = static_cast<int64_t>(indices.size());
    const int64_t per_image = t.channels * t.crop_h * t.crop_w;

    // Images are handed out in increasing order (dynamic, chunk 1), so once image i failed every image below
    // i is still decoded and the lowest failure wins whatever the thread count.
    std::atomic<int64_t> first_failure{n};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    std::atomic<int64_t> done{0};
    auto last_report = std::chrono::steady_clock::now();
    bool reported = false;
    std::exception_ptr progress_failure;

#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
        if (i > first_failure.load(std::memory_order_relaxed)) continue;
        try {
            const Image img = decode_image_file(index.files[indices[i]], jpeg);
            transform_image(img, t, out + i * per_image);
        } catch (...) {
            std::lock_guard<std::mutex> lock(failure_mutex);
            if (i < first_failure.load()) {
                first_failure.store(i);
                failure = std::current_exception();
            }
        }
        const int64_t finished = done.fetch_add(1) + 1;
        if (progress && !progress_failure && omp_get_thread_num() == 0) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_report >= std::chrono::seconds(1)) {
                last_report = now;
                reported = true;
                try {
                    progress(finished, n);
                } catch (...) {
                    progress_failure = std::current_exception();
                }
            }
        }
    }
    if (failure) std::rethrow_exception(failure);
    if (progress_failure) std::rethrow_exception(progress_failure);
    if (reported) progress(n, n);
}

}  // namespace dcs
