#pragma once
/// A dense tensor: the value type of the graph IR and of the fp32 reference executor.
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace dcs {

/// "[1, 3, 28, 28]"
std::string shape_str(const std::vector<int64_t>& shape);

enum class DType { f32, i64 };

/// Dense row-major tensor. Float tensors use `data`; integer tensors (shapes, pads, axes) use `ints`.
struct Tensor {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    std::vector<float> data;
    std::vector<int64_t> ints;

    Tensor() = default;
    Tensor(std::vector<int64_t> shape_, std::vector<float> data_)
        : dtype(DType::f32), shape(std::move(shape_)), data(std::move(data_)) {}
    static Tensor zeros(std::vector<int64_t> shape_) {
        Tensor t;
        t.shape = std::move(shape_);
        t.data.assign(static_cast<size_t>(numel_of(t.shape)), 0.0f);
        return t;
    }
    static Tensor from_ints(std::vector<int64_t> shape_, std::vector<int64_t> ints_) {
        Tensor t;
        t.dtype = DType::i64;
        t.shape = std::move(shape_);
        t.ints = std::move(ints_);
        return t;
    }
    /// Product of the dimensions. Throws InputError when it overflows int64 (a shape from a damaged or
    /// hostile file); a -1 (dynamic) dimension makes it negative, as callers expect.
    static int64_t numel_of(const std::vector<int64_t>& s) {
        int64_t n = 1;
        for (int64_t d : s)
            if (__builtin_mul_overflow(n, d, &n)) throw InputError("tensor shape " + shape_str(s) + " has too many elements");
        return n;
    }
    int64_t numel() const { return numel_of(shape); }
    int64_t rank() const { return static_cast<int64_t>(shape.size()); }
};


}  // namespace dcs
