// HDF5 results file: the only file of search/ that talks to HDF5.
#include "search/results_store.hpp"

#include <hdf5.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>

#include "common/error.hpp"
#include "common/metric.hpp"

namespace dcs::search {
namespace {

constexpr uint64_t kFnvBasis = 14695981039346656037ull;
/// The user block HDF5 leaves at the start of the file; its first kHeaderBytes hold the dcsearch
/// header (docs/results-format.md): magic, header version (u32 LE), file length (u64 LE) and the
/// FNV-1a 64 of every byte after the user block (u64 LE).
constexpr size_t kUserBlock = 512;
constexpr size_t kHeaderBytes = 36;
constexpr char kMagic[16] = {'d', 'c', 's', 'e', 'a', 'r', 'c', 'h', '-', 'r', 'e', 's', 'u', 'l', 't', 's'};
constexpr uint64_t kHeaderVersion = 1;

/// An HDF5 call failed. Carries the call's name.
struct H5Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

hid_t check(hid_t id, const char* call) {
    if (id < 0) throw H5Error(std::string("HDF5 call ") + call + " failed");
    return id;
}
void check_status(herr_t st, const char* call) {
    if (st < 0) throw H5Error(std::string("HDF5 call ") + call + " failed");
}

/// Owns an HDF5 identifier; closing never throws.
class Handle {
public:
    Handle() = default;
    Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
    ~Handle() {
        if (id_ >= 0 && close_) close_(id_);
    }
    hid_t get() const { return id_; }
    operator hid_t() const { return id_; }

private:
    hid_t id_ = -1;
    herr_t (*close_)(hid_t) = nullptr;
};

struct Quiet {
    // HDF5 prints its error stack by default; our messages say what failed.
    Quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};

Handle group(hid_t parent, const char* name) {
    return Handle(check(H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Gcreate2"), H5Gclose);
}

Handle string_type() {
    Handle t(check(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
    check_status(H5Tset_size(t, H5T_VARIABLE), "H5Tset_size");
    check_status(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset");
    return t;
}

template <class T>
hid_t native();
template <>
hid_t native<double>() { return H5T_NATIVE_DOUBLE; }
template <>
hid_t native<int64_t>() { return H5T_NATIVE_INT64; }
template <>
hid_t native<int32_t>() { return H5T_NATIVE_INT32; }
template <>
hid_t native<int8_t>() { return H5T_NATIVE_INT8; }

template <class T>
void write_array(hid_t parent, const char* name, const std::vector<T>& v, std::vector<hsize_t> dims = {}) {
    if (dims.empty()) dims = {v.size()};
    Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "H5Screate_simple"),
                 H5Sclose);
    Handle ds(check(H5Dcreate2(parent, name, native<T>(), space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2"),
              H5Dclose);
    if (!v.empty()) check_status(H5Dwrite(ds, native<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "H5Dwrite");
}

void write_strings(hid_t parent, const char* name, const std::vector<std::string>& v) {
    hsize_t n = v.size();
    Handle space(check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple"), H5Sclose);
    Handle t = string_type();
    Handle ds(check(H5Dcreate2(parent, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2"), H5Dclose);
    std::vector<const char*> ptrs;
    for (const auto& s : v) ptrs.push_back(s.c_str());
    if (!v.empty()) check_status(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "H5Dwrite");
}

void write_string(hid_t parent, const char* name, const std::string& s) {
    Handle space(check(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
    Handle t = string_type();
    Handle ds(check(H5Dcreate2(parent, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2"), H5Dclose);
    const char* p = s.c_str();
    check_status(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), "H5Dwrite");
}

template <class T>
void write_attr(hid_t obj, const char* name, T value) {
    Handle space(check(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
    Handle a(check(H5Acreate2(obj, name, native<T>(), space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2"), H5Aclose);
    check_status(H5Awrite(a, native<T>(), &value), "H5Awrite");
}

void write_attr_string(hid_t obj, const char* name, const std::string& value) {
    Handle space(check(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
    Handle t = string_type();
    Handle a(check(H5Acreate2(obj, name, t, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2"), H5Aclose);
    const char* p = value.c_str();
    check_status(H5Awrite(a, t, &p), "H5Awrite");
}

// ---- reading ----

struct Reader {
    const std::string& path;

    [[noreturn]] void fail(const std::string& what) const {
        throw InputError(path + ": not a readable dcsearch results file (" + what + ")");
    }
    Handle open_ds(hid_t parent, const char* name) const {
        hid_t id = H5Dopen2(parent, name, H5P_DEFAULT);
        if (id < 0) fail(std::string("missing dataset ") + name);
        return Handle(id, H5Dclose);
    }
    std::vector<hsize_t> dims(hid_t ds) const {
        Handle space(H5Dget_space(ds), H5Sclose);
        if (space.get() < 0) fail("bad dataspace");
        int r = H5Sget_simple_extent_ndims(space);
        if (r < 0 || r > 4) fail("bad rank");
        std::vector<hsize_t> d(static_cast<size_t>(r));
        if (r > 0) H5Sget_simple_extent_dims(space, d.data(), nullptr);
        return d;
    }
    template <class T>
    std::vector<T> array(hid_t parent, const char* name, std::vector<hsize_t>* shape = nullptr) const {
        Handle ds = open_ds(parent, name);
        auto d = dims(ds);
        hsize_t n = 1;
        for (auto x : d) {
            if (x > (hsize_t(1) << 32)) fail(std::string("dataset ") + name + " is too large");
            n *= x;
        }
        if (n > (hsize_t(1) << 32)) fail(std::string("dataset ") + name + " is too large");
        std::vector<T> v(n);
        if (n && H5Dread(ds, native<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
            fail(std::string("cannot read ") + name);
        if (shape) *shape = d;
        return v;
    }
    std::vector<std::string> strings(hid_t parent, const char* name) const {
        Handle ds = open_ds(parent, name);
        auto d = dims(ds);
        hsize_t n = d.empty() ? 1 : d[0];
        if (d.size() > 1 || n > (hsize_t(1) << 28)) fail(std::string("bad string dataset ") + name);
        Handle t = string_type();
        std::vector<char*> ptrs(n, nullptr);
        if (n && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) fail(std::string("cannot read ") + name);
        std::vector<std::string> out;
        for (char* p : ptrs) out.push_back(p ? p : "");
        if (n) {
            Handle space(H5Dget_space(ds), H5Sclose);
            H5Dvlen_reclaim(t, space, H5P_DEFAULT, ptrs.data());
        }
        return out;
    }
    template <class T>
    T attr(hid_t obj, const char* name) const {
        hid_t id = H5Aopen(obj, name, H5P_DEFAULT);
        if (id < 0) fail(std::string("missing attribute ") + name);
        Handle a(id, H5Aclose);
        T v{};
        if (H5Aread(a, native<T>(), &v) < 0) fail(std::string("cannot read attribute ") + name);
        return v;
    }
    std::string attr_string(hid_t obj, const char* name) const {
        hid_t id = H5Aopen(obj, name, H5P_DEFAULT);
        if (id < 0) fail(std::string("missing attribute ") + name);
        Handle a(id, H5Aclose);
        Handle t = string_type();
        char* p = nullptr;
        if (H5Aread(a, t, &p) < 0) fail(std::string("cannot read attribute ") + name);
        std::string s = p ? p : "";
        H5free_memory(p);
        return s;
    }
    Handle open_group(hid_t parent, const char* name) const {
        hid_t id = H5Gopen2(parent, name, H5P_DEFAULT);
        if (id < 0) fail(std::string("missing group ") + name);
        return Handle(id, H5Gclose);
    }
};

/// Flattens a list of index lists into (values, offsets).
void write_ragged(hid_t parent, const char* values_name, const char* offsets_name,
                  const std::vector<std::vector<size_t>>& lists) {
    std::vector<int64_t> values, offsets{0};
    for (const auto& l : lists) {
        for (size_t i : l) values.push_back(static_cast<int64_t>(i));
        offsets.push_back(static_cast<int64_t>(values.size()));
    }
    write_array(parent, values_name, values);
    write_array(parent, offsets_name, offsets);
}

std::vector<std::vector<size_t>> read_ragged(const Reader& r, hid_t parent, const char* values_name,
                                             const char* offsets_name, size_t rows, size_t max_index) {
    auto values = r.array<int64_t>(parent, values_name);
    auto offsets = r.array<int64_t>(parent, offsets_name);
    if (offsets.size() != rows + 1 || offsets[0] != 0) r.fail(std::string("bad ") + offsets_name);
    std::vector<std::vector<size_t>> out(rows);
    for (size_t g = 0; g < rows; ++g) {
        if (offsets[g + 1] < offsets[g] || offsets[g + 1] > static_cast<int64_t>(values.size()))
            r.fail(std::string("bad ") + offsets_name);
        for (int64_t k = offsets[g]; k < offsets[g + 1]; ++k) {
            if (values[k] < 0 || static_cast<size_t>(values[k]) >= max_index) r.fail(std::string("bad ") + values_name);
            out[g].push_back(static_cast<size_t>(values[k]));
        }
    }
    return out;
}

/// FNV-1a 64 of `n` bytes, continuing from `h`.
uint64_t fnv1a64(const unsigned char* p, size_t n, uint64_t h = kFnvBasis) {
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace

double TestRecord::accuracy_of(size_t id) const {
    for (size_t k = 0; k < ids.size(); ++k)
        if (ids[k] == id) return accuracy[k];
    return std::numeric_limits<double>::quiet_NaN();
}

std::string file_hash(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot read");
    uint64_t h = kFnvBasis;
    char buf[1 << 16];
    while (in) {
        in.read(buf, sizeof buf);
        h = fnv1a64(reinterpret_cast<const unsigned char*>(buf), static_cast<size_t>(in.gcount()), h);
    }
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
    return out;
}

namespace {

void put_le(unsigned char* p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t get_le(const unsigned char* p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

/// Fills the user block of a closed results file at `path` with the dcsearch header: magic, header
/// version, file length and the FNV-1a 64 of every byte after the user block.
void seal(const std::string& path) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    if (!f) throw std::runtime_error("cannot reopen " + path + " to write its header");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (bytes.size() < kUserBlock) throw std::runtime_error(path + ": HDF5 wrote no user block");
    unsigned char head[kHeaderBytes] = {};
    std::memcpy(head, kMagic, sizeof kMagic);
    put_le(head + 16, kHeaderVersion, 4);
    put_le(head + 20, bytes.size(), 8);
    put_le(head + 28, fnv1a64(bytes.data() + kUserBlock, bytes.size() - kUserBlock), 8);
    f.clear();
    f.seekp(0);
    f.write(reinterpret_cast<const char*>(head), sizeof head);
    f.flush();
    if (!f) throw std::runtime_error("cannot write the header of " + path);
}

/// Checks the dcsearch header of a results file before HDF5 sees a byte of it: HDF5 1.10 can loop
/// forever or crash on damaged metadata (found by fuzz/fuzz_results.cpp), so only files whose
/// checksum matches what dcsearch wrote are opened. Throws InputError naming the file.
void verify(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot read the results file");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const bool ours = bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
    if (ours && bytes.size() < kUserBlock) {
        throw InputError(path + ": the results file holds only " + std::to_string(bytes.size()) +
                         " bytes (truncated or damaged)");
    }
    if (!ours) {
        const bool hdf5 = bytes.size() >= 8 && std::memcmp(bytes.data(), hdf5_signature, 8) == 0;
        throw InputError(path + (hdf5 ? ": an HDF5 file, but not a dcsearch results file (no dcsearch header)"
                                      : bytes.empty() ? ": empty file, expected a dcsearch results file"
                                                      : ": not a dcsearch results file"));
    }
    const uint64_t version = get_le(bytes.data() + 16, 4), length = get_le(bytes.data() + 20, 8);
    if (version != kHeaderVersion) {
        throw InputError(path + ": results header version " + std::to_string(version) + ", this build reads " +
                         std::to_string(kHeaderVersion));
    }
    if (length != bytes.size()) {
        throw InputError(path + ": the results file holds " + std::to_string(bytes.size()) + " bytes, its header says " +
                         std::to_string(length) + " (truncated or damaged)");
    }
    if (get_le(bytes.data() + 28, 8) != fnv1a64(bytes.data() + kUserBlock, bytes.size() - kUserBlock)) {
        throw InputError(path + ": checksum mismatch: the results file was damaged or changed after dcsearch wrote it");
    }
}

}  // namespace

void write_results(const std::string& path, const ResultsData& d) {
    static Quiet quiet;
    const std::string tmp = path + ".tmp";
    try {
        {
            Handle fcpl(check(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate"), H5Pclose);
            check_status(H5Pset_userblock(fcpl, kUserBlock), "H5Pset_userblock");
            Handle f(check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), "H5Fcreate"), H5Fclose);
            write_attr<int32_t>(f, "format_version", ResultsData::kFormatVersion);
            write_attr_string(f, "producer", "dcsearch");
            write_attr<int8_t>(f, "complete", d.complete ? 1 : 0);
            write_string(f, "config_text", d.config_text);
            write_attr_string(f, "config_path", d.config_path);
            write_attr_string(f, "model_path", d.model_path);
            write_attr_string(f, "model_hash", d.model_hash);

            {
                Handle g = group(f, "layers");
                std::vector<std::string> names, ops, shapes;
                std::vector<int64_t> params, macs;
                for (const auto& l : d.layers) {
                    names.push_back(l.name);
                    ops.push_back(l.op);
                    std::string s;
                    for (size_t i = 0; i < l.weight_shape.size(); ++i) s += (i ? "x" : "") + std::to_string(l.weight_shape[i]);
                    shapes.push_back(s);
                    params.push_back(l.params);
                    macs.push_back(l.macs);
                }
                write_strings(g, "name", names);
                write_strings(g, "op", ops);
                write_strings(g, "weight_shape", shapes);
                write_array(g, "params", params);
                write_array(g, "macs", macs);
                std::vector<std::vector<size_t>> dummy;
                std::vector<int64_t> bits, bits_off{0};
                std::vector<double> prunes;
                std::vector<int64_t> prune_off{0};
                for (const auto& l : d.layers) {
                    for (int b : l.bits) bits.push_back(b);
                    bits_off.push_back(static_cast<int64_t>(bits.size()));
                    for (double p : l.prunes) prunes.push_back(p);
                    prune_off.push_back(static_cast<int64_t>(prunes.size()));
                }
                write_array(g, "bits_choices", bits);
                write_array(g, "bits_offsets", bits_off);
                write_array(g, "prune_choices", prunes);
                write_array(g, "prune_offsets", prune_off);
            }
            {
                Handle g = group(f, "baseline");
                write_attr<double>(g, "accuracy", d.baseline_accuracy);
                write_attr<double>(g, "size_bytes", d.baseline_size_bytes);
                write_attr<double>(g, "bops", d.baseline_bops);
                write_attr<int64_t>(g, "samples", d.validation_samples);
                write_attr_string(g, "metric", d.metric);
            }
            {
                Handle g = group(f, "search");
                write_strings(g, "objectives", d.objectives);
                write_array(g, "hv_reference", d.hv_reference);
                write_attr<double>(g, "max_accuracy_drop", d.max_accuracy_drop);
                write_attr<int64_t>(g, "seed", static_cast<int64_t>(d.seed));
            }
            {
                Handle g = group(f, "evaluations");
                const size_t n = d.evaluations.size(), nl = d.layers.size();
                std::vector<int64_t> id(n), samples(n);
                std::vector<int32_t> gen(n), rank(n), bits(n * nl), genome(n * 2 * nl);
                std::vector<double> prune(n * nl), acc(n), size(n), bops(n), lat(n), secs(n), viol(n), rss(n);
                std::vector<int8_t> ok(n), feasible(n);
                std::vector<std::string> err(n);
                for (size_t i = 0; i < n; ++i) {
                    const auto& e = d.evaluations[i];
                    if (e.genome.size() != 2 * nl) throw std::runtime_error("evaluation " + std::to_string(i) + " has a genome of the wrong length");
                    id[i] = static_cast<int64_t>(i);
                    gen[i] = e.generation;
                    rank[i] = e.rank;
                    for (size_t l = 0; l < nl; ++l) {
                        const auto& lr = d.layers[l];
                        bits[i * nl + l] = lr.bits.at(static_cast<size_t>(e.genome[2 * l]));
                        prune[i * nl + l] = lr.prunes.at(static_cast<size_t>(e.genome[2 * l + 1]));
                        genome[i * 2 * nl + 2 * l] = e.genome[2 * l];
                        genome[i * 2 * nl + 2 * l + 1] = e.genome[2 * l + 1];
                    }
                    acc[i] = e.accuracy;
                    size[i] = e.size_bytes;
                    bops[i] = e.bops;
                    lat[i] = e.latency;
                    secs[i] = e.seconds;
                    rss[i] = e.peak_rss_bytes;
                    samples[i] = e.samples;
                    viol[i] = e.violation;
                    ok[i] = e.ok ? 1 : 0;
                    feasible[i] = e.ok && e.violation <= 0.0 ? 1 : 0;
                    err[i] = e.error;
                }
                write_array(g, "id", id);
                write_array(g, "generation", gen);
                write_array(g, "weight_bits", bits, {n, nl});
                write_array(g, "prune_ratio", prune, {n, nl});
                write_array(g, "genome", genome, {n, 2 * nl});
                write_array(g, "accuracy", acc);
                write_array(g, "size_bytes", size);
                write_array(g, "bops", bops);
                write_array(g, "latency", lat);
                write_array(g, "violation", viol);
                write_array(g, "ok", ok);
                write_array(g, "feasible", feasible);
                write_strings(g, "error", err);
                write_array(g, "seconds", secs);
                write_array(g, "rank", rank);
                write_array(g, "peak_rss_bytes", rss);
                write_array(g, "samples", samples);
            }
            {
                Handle g = group(f, "generations");
                std::vector<int32_t> num;
                std::vector<double> hv;
                std::vector<std::vector<size_t>> fronts, pops;
                for (const auto& r : d.generations) {
                    num.push_back(r.generation);
                    hv.push_back(r.hypervolume);
                    fronts.push_back(r.front);
                    pops.push_back(r.population);
                }
                write_array(g, "generation", num);
                write_array(g, "hypervolume", hv);
                write_ragged(g, "front_ids", "front_offsets", fronts);
                write_ragged(g, "population_ids", "population_offsets", pops);
            }
            {
                Handle g = group(f, "runs");
                std::vector<double> wall, cpu, busy, wrss;
                std::vector<int32_t> workers, wrun, wrank;
                std::vector<int64_t> wevals;
                for (const auto& r : d.runs) {
                    wall.push_back(r.wall_seconds);
                    cpu.push_back(r.coordinator_cpu_seconds);
                    workers.push_back(r.workers);
                }
                for (const auto& w : d.workers) {
                    wrun.push_back(w.run);
                    wrank.push_back(w.rank);
                    wevals.push_back(w.evaluations);
                    busy.push_back(w.busy_seconds);
                    wrss.push_back(w.peak_rss_bytes);
                }
                write_array(g, "wall_seconds", wall);
                write_array(g, "coordinator_cpu_seconds", cpu);
                write_array(g, "workers", workers);
                write_array(g, "worker_run", wrun);
                write_array(g, "worker_rank", wrank);
                write_array(g, "worker_evaluations", wevals);
                write_array(g, "worker_busy_seconds", busy);
                write_array(g, "worker_peak_rss_bytes", wrss);
            }
            if (d.test) {
                Handle g = group(f, "test");
                write_attr<int64_t>(g, "offset", d.test->offset);
                write_attr<int64_t>(g, "count", d.test->count);
                write_attr<double>(g, "baseline_accuracy", d.test->baseline_accuracy);
                if (d.test->accuracy.size() != d.test->ids.size())
                    throw std::runtime_error("the test record has " + std::to_string(d.test->ids.size()) + " ids and " +
                                             std::to_string(d.test->accuracy.size()) + " accuracies");
                std::vector<int64_t> ids;
                for (size_t id : d.test->ids) {
                    if (id >= d.evaluations.size())
                        throw std::runtime_error("the test record names evaluation " + std::to_string(id) +
                                                 ", which does not exist");
                    ids.push_back(static_cast<int64_t>(id));
                }
                write_array(g, "ids", ids);
                write_array(g, "accuracy", d.test->accuracy);
            }
            check_status(H5Fflush(f, H5F_SCOPE_GLOBAL), "H5Fflush");
        }
        seal(tmp);
        std::error_code ec;
        std::filesystem::rename(tmp, path, ec);
        if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
    } catch (const H5Error& e) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw std::runtime_error(path + ": writing the results file failed: " + e.what());
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw;
    }
}

ResultsData read_results(const std::string& path) {
    static Quiet quiet;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw InputError(path + ": results file not found");
    if (std::filesystem::is_directory(path, ec)) throw InputError(path + ": is a directory, expected a results file");
    verify(path);
    hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0) throw InputError(path + ": cannot open as HDF5");
    Handle f(fid, H5Fclose);
    Reader r{path};
    ResultsData d;
    if (r.attr_string(f, "producer") != "dcsearch") r.fail("not written by dcsearch");
    int32_t version = r.attr<int32_t>(f, "format_version");
    if (version != ResultsData::kFormatVersion)
        r.fail("format version " + std::to_string(version) + ", this build reads " + std::to_string(ResultsData::kFormatVersion));
    d.complete = r.attr<int8_t>(f, "complete") != 0;
    d.config_text = r.strings(f, "config_text").at(0);
    d.config_path = r.attr_string(f, "config_path");
    d.model_path = r.attr_string(f, "model_path");
    d.model_hash = r.attr_string(f, "model_hash");
    {
        Handle g = r.open_group(f, "layers");
        auto names = r.strings(g, "name"), ops = r.strings(g, "op"), shapes = r.strings(g, "weight_shape");
        auto params = r.array<int64_t>(g, "params"), macs = r.array<int64_t>(g, "macs");
        auto bits = r.array<int64_t>(g, "bits_choices"), bo = r.array<int64_t>(g, "bits_offsets");
        auto prunes = r.array<double>(g, "prune_choices");
        auto po = r.array<int64_t>(g, "prune_offsets");
        const size_t nl = names.size();
        if (ops.size() != nl || shapes.size() != nl || params.size() != nl || macs.size() != nl || bo.size() != nl + 1 ||
            po.size() != nl + 1)
            r.fail("inconsistent layer table");
        for (size_t l = 0; l < nl; ++l) {
            LayerRow lr;
            lr.name = names[l];
            lr.op = ops[l];
            lr.params = params[l];
            lr.macs = macs[l];
            if (bo[l] < 0 || bo[l + 1] < bo[l] || bo[l + 1] > static_cast<int64_t>(bits.size()) || po[l] < 0 ||
                po[l + 1] < po[l] || po[l + 1] > static_cast<int64_t>(prunes.size()))
                r.fail("inconsistent layer choices");
            for (int64_t k = bo[l]; k < bo[l + 1]; ++k) lr.bits.push_back(static_cast<int>(bits[k]));
            for (int64_t k = po[l]; k < po[l + 1]; ++k) lr.prunes.push_back(prunes[k]);
            if (lr.bits.empty() || lr.prunes.empty()) r.fail("a layer without choices");
            d.layers.push_back(lr);
        }
    }
    {
        Handle g = r.open_group(f, "baseline");
        d.baseline_accuracy = r.attr<double>(g, "accuracy");
        d.baseline_size_bytes = r.attr<double>(g, "size_bytes");
        d.baseline_bops = r.attr<double>(g, "bops");
        d.validation_samples = r.attr<int64_t>(g, "samples");
        if (H5Aexists(g, "metric") > 0) d.metric = r.attr_string(g, "metric");
        if (!metric_from_name(d.metric)) r.fail("baseline metric '" + d.metric + "' is not top1, top5 or agreement");
    }
    {
        Handle g = r.open_group(f, "search");
        d.objectives = r.strings(g, "objectives");
        d.hv_reference = r.array<double>(g, "hv_reference");
        d.max_accuracy_drop = r.attr<double>(g, "max_accuracy_drop");
        d.seed = static_cast<uint64_t>(r.attr<int64_t>(g, "seed"));
    }
    {
        Handle g = r.open_group(f, "evaluations");
        const size_t nl = d.layers.size();
        std::vector<hsize_t> gshape;
        auto genome = r.array<int32_t>(g, "genome", &gshape);
        auto gen = r.array<int32_t>(g, "generation");
        const size_t n = gen.size();
        if (gshape.size() != 2 || gshape[0] != n || gshape[1] != 2 * nl) r.fail("genome table does not match the layers");
        auto acc = r.array<double>(g, "accuracy"), size = r.array<double>(g, "size_bytes"), bops = r.array<double>(g, "bops");
        auto lat = r.array<double>(g, "latency"), viol = r.array<double>(g, "violation"), secs = r.array<double>(g, "seconds");
        auto ok = r.array<int8_t>(g, "ok");
        auto rank = r.array<int32_t>(g, "rank");
        auto err = r.strings(g, "error");
        for (const auto* v : {&acc, &size, &bops, &lat, &viol, &secs})
            if (v->size() != n) r.fail("evaluation columns differ in length");
        if (ok.size() != n || rank.size() != n || err.size() != n) r.fail("evaluation columns differ in length");
        std::vector<double> rss(n, 0.0);  // optional: older files have no peak memory
        if (H5Lexists(g, "peak_rss_bytes", H5P_DEFAULT) > 0) rss = r.array<double>(g, "peak_rss_bytes");
        std::vector<int64_t> samples(n, 0);  // optional: older files have no sample counts
        if (H5Lexists(g, "samples", H5P_DEFAULT) > 0) samples = r.array<int64_t>(g, "samples");
        if (rss.size() != n || samples.size() != n) r.fail("evaluation columns differ in length");
        for (size_t i = 0; i < n; ++i) {
            Evaluation e;
            e.genome.assign(genome.begin() + static_cast<long>(i * 2 * nl), genome.begin() + static_cast<long>((i + 1) * 2 * nl));
            for (size_t l = 0; l < nl; ++l)
                if (e.genome[2 * l] < 0 || e.genome[2 * l] >= static_cast<int>(d.layers[l].bits.size()) ||
                    e.genome[2 * l + 1] < 0 || e.genome[2 * l + 1] >= static_cast<int>(d.layers[l].prunes.size()))
                    r.fail("evaluation " + std::to_string(i) + " has a gene out of range");
            e.generation = gen[i];
            e.accuracy = acc[i];
            e.size_bytes = size[i];
            e.bops = bops[i];
            e.latency = lat[i];
            e.violation = viol[i];
            e.seconds = secs[i];
            e.peak_rss_bytes = rss[i];
            e.samples = samples[i];
            e.ok = ok[i] != 0;
            e.rank = rank[i];
            e.error = err[i];
            d.evaluations.push_back(std::move(e));
        }
    }
    {
        Handle g = r.open_group(f, "generations");
        auto num = r.array<int32_t>(g, "generation");
        auto hv = r.array<double>(g, "hypervolume");
        if (hv.size() != num.size()) r.fail("generation columns differ in length");
        auto fronts = read_ragged(r, g, "front_ids", "front_offsets", num.size(), d.evaluations.size());
        auto pops = read_ragged(r, g, "population_ids", "population_offsets", num.size(), d.evaluations.size());
        for (size_t i = 0; i < num.size(); ++i) {
            GenerationRecord rec;
            rec.generation = num[i];
            rec.hypervolume = hv[i];
            rec.front = fronts[i];
            rec.population = pops[i];
            d.generations.push_back(std::move(rec));
        }
    }
    if (H5Lexists(f, "runs", H5P_DEFAULT) > 0) {  // optional: older files have no run table
        Handle g = r.open_group(f, "runs");
        auto wall = r.array<double>(g, "wall_seconds"), cpu = r.array<double>(g, "coordinator_cpu_seconds");
        auto workers = r.array<int32_t>(g, "workers");
        if (cpu.size() != wall.size() || workers.size() != wall.size()) r.fail("run columns differ in length");
        for (size_t i = 0; i < wall.size(); ++i) d.runs.push_back({wall[i], cpu[i], workers[i]});
        auto wrun = r.array<int32_t>(g, "worker_run"), wrank = r.array<int32_t>(g, "worker_rank");
        auto wevals = r.array<int64_t>(g, "worker_evaluations");
        auto busy = r.array<double>(g, "worker_busy_seconds");
        std::vector<double> wrss(wrun.size(), 0.0);  // optional: older files have no peak memory
        if (H5Lexists(g, "worker_peak_rss_bytes", H5P_DEFAULT) > 0) wrss = r.array<double>(g, "worker_peak_rss_bytes");
        if (wrank.size() != wrun.size() || wevals.size() != wrun.size() || busy.size() != wrun.size() ||
            wrss.size() != wrun.size())
            r.fail("worker columns differ in length");
        for (size_t i = 0; i < wrun.size(); ++i) {
            if (wrun[i] < 0 || static_cast<size_t>(wrun[i]) >= d.runs.size()) r.fail("bad worker_run");
            d.workers.push_back({wrun[i], wrank[i], wevals[i], busy[i], wrss[i]});
        }
    }
    if (H5Lexists(f, "test", H5P_DEFAULT) > 0) {  // optional: only searches with a test subset write it
        Handle g = r.open_group(f, "test");
        TestRecord t;
        t.offset = r.attr<int64_t>(g, "offset");
        t.count = r.attr<int64_t>(g, "count");
        t.baseline_accuracy = r.attr<double>(g, "baseline_accuracy");
        auto ids = r.array<int64_t>(g, "ids");
        t.accuracy = r.array<double>(g, "accuracy");
        if (t.accuracy.size() != ids.size()) r.fail("test columns differ in length");
        for (int64_t id : ids) {
            if (id < 0 || static_cast<size_t>(id) >= d.evaluations.size()) r.fail("bad /test/ids");
            t.ids.push_back(static_cast<size_t>(id));
        }
        d.test = std::move(t);
    }
    return d;
}

int64_t ResultsData::stopped_early() const {
    int64_t n = 0;
    for (const auto& e : evaluations) n += e.ok && e.samples > 0 && e.samples < validation_samples;
    return n;
}

}  // namespace dcs::search
