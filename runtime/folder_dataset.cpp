#include "runtime/folder_dataset.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "common/error.hpp"
#include "runtime/image_folder.hpp"

namespace dcs {
namespace {

/// Sample indices inside any of `used` (clipped to [0, n)), ascending; every index when `used` is empty.
std::vector<int64_t> needed_samples(const std::vector<Subset>& used, int64_t n) {
    std::vector<bool> want(static_cast<size_t>(n), used.empty());
    for (const Subset& s : used)
        for (int64_t i = std::max<int64_t>(s.offset, 0); i < std::min(n, s.offset + s.count); ++i) want[i] = true;
    std::vector<int64_t> out;
    for (int64_t i = 0; i < n; ++i)
        if (want[i]) out.push_back(i);
    return out;
}

/// Under mpirun every rank decodes its own copy; only rank 0 (or a process outside MPI) reports progress.
bool reports_progress() {
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    return rank == nullptr || std::string(rank) == "0";
}

}  // namespace

Dataset load_folder_dataset(const DatasetConfig& cfg, const std::vector<Subset>& used) {
    if (cfg.root.empty()) throw InputError("dataset.root: no image folder given");
    const ImageGeometry& g = cfg.image;
    if (g.crop_h < 1 || g.crop_w < 1 || (g.channels != 1 && g.channels != 3))
        throw std::logic_error("load_folder_dataset: the image geometry is not set (crop and channels)");
    const ImageFolderIndex index = scan_image_folder(cfg.root, cfg.classes);
    const int64_t n = static_cast<int64_t>(index.files.size());
    const std::vector<int64_t> todo = needed_samples(used, n);

    ImageTransform t;
    t.resize = g.resize;
    t.crop_h = g.crop_h;
    t.crop_w = g.crop_w;
    t.channels = g.channels;
    const int64_t per_image = g.channels * g.crop_h * g.crop_w;
    auto pixels = std::make_shared<std::vector<uint8_t>>(todo.size() * static_cast<size_t>(per_image));

    const bool tty = isatty(STDERR_FILENO) != 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto last = t0;
    bool printed = false;
    auto progress = [&](int64_t done, int64_t total) {
        const auto now = std::chrono::steady_clock::now();
        // A line every 10 s into a log, an updated line every second on a terminal.
        if (!reports_progress() || now - last < std::chrono::seconds(tty ? 1 : 10)) return;
        last = now;
        printed = true;
        std::fprintf(stderr, "%sdcsearch: decoding images in %s: %lld/%lld%s", tty ? "\r" : "", cfg.root.c_str(),
                     static_cast<long long>(done), static_cast<long long>(total), tty ? "" : "\n");
    };
    decode_images(index, todo, t, pixels->data(), progress);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (reports_progress() && (printed || seconds >= 2.0))
        std::fprintf(stderr, "%sdcsearch: decoded %zu images in %s in %.1f s\n", printed && tty ? "\r" : "",
                     todo.size(), cfg.root.c_str(), seconds);

    std::vector<int64_t> slots;
    if (static_cast<int64_t>(todo.size()) != n) {
        slots.assign(static_cast<size_t>(n), -1);
        for (size_t k = 0; k < todo.size(); ++k) slots[static_cast<size_t>(todo[k])] = static_cast<int64_t>(k);
    }
    std::vector<int64_t> labels = index.labelled ? index.labels : std::vector<int64_t>{};
    Dataset ds = Dataset::from_storage(n, g.channels, g.crop_h, g.crop_w, false, pixels, pixels->data(),
                                       std::move(labels), std::move(slots));
    ds.set_sources(cfg.root, index.labelled ? cfg.root + " (class folders)" : "");
    return ds;
}

}  // namespace dcs
