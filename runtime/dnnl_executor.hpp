#pragma once
/// The oneDNN executor: compiles a Graph to oneDNN primitives once per batch size and runs it, in fp32
/// or in int8 (the hot path of candidate evaluation).
///
/// Int8 mode: Conv / Gemm / MatMul layers run with s8 weights (the candidate's codes), u8 activations
/// after ReLU and s8 otherwise, per-output-channel scales set at run time (a binary-multiply post-op with
/// a per-channel tensor: oneDNN 2.6 convolutions reject DNNL_RUNTIME_F32_VAL output scales), ReLU / Clip
/// fused as eltwise post-ops and a residual Add as a sum post-op where the graph allows, pooling, zero
/// Pad, Concat and Add on int8 data, fp32 only at input quantization, for ops without an int8 form
/// (Softmax, unfolded BatchNorm, non-zero Pad) and for the final logits. Primitives are created once
/// (per batch size and image stream) after calibration; set_weights() only reorders the codes into each primitive's
/// weight layout and swaps the scale and bias buffers; prepare_layer() / load() keep reordered layers
/// for reuse, so loading a prepared layer again only swaps pointers. Activations with disjoint lifetimes share memory.
/// Shapes oneDNN 2.6 serves slowly run in host kernels with the same integer arithmetic (exact against
/// the integer reference): 8-bit pooling and several int8 convolution families (one input channel,
/// few input bytes per kernel row with VNNI, depthwise, 1x1 with AMX). The kernel table
/// (runtime/kernels/kernel_table.hpp) picks them per layer when a plan is compiled; implementations()
/// names them "host:..." and says why the table's rows tried before declined; DCS_DISABLE_KERNELS
/// turns rows off (docs/environment.md). Figures in docs/performance.md.
/// Gemm with transA=1 is not supported (UnsupportedError).
/// The exact arithmetic is described in runtime/int8_reference.hpp; Int8ReferenceExecutor reproduces it.
///
/// Threads: OMP_NUM_THREADS threads per executor; in int8 mode each runs its own sub-batches of images
/// (see run()). With several ranks per node, give each rank cores / ranks threads (e.g.
/// `OMP_NUM_THREADS=4 mpirun -np 8 --map-by slot:PE=4 ...`).
///
/// oneDNN headers stay inside the .cpp files: this header only needs the graph IR.
///
/// Evaluating candidates:
///
///     DnnlExecutor ex(graph, DnnlExecutor::Mode::Int8, 256);
///     ex.calibrate(calibration_batches);              // once: activation scales, primitives
///     for (const auto& candidate : candidates) {
///         std::map<std::string, Int8LayerWeights> w;
///         for (const auto& [layer, cw] : candidate)    // cw: compress::CompressedWeight
///             w[layer] = int8_weights_from(cw);
///         ex.set_weights(w);                          // only the codes and scales change
///         for (const auto& batch : validation_batches) predictions(ex.run(batch));
///     }
///
/// A search that sees the same layer choices again keeps prepare_layer() results (CandidateEvaluator's
/// weight cache) and load()s them: nothing is recomputed or reordered.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/calibrate.hpp"
#include "runtime/graph.hpp"
#include "runtime/int8_reference.hpp"

namespace dcs {

class DnnlExecutor {
public:
    enum class Mode { Fp32, Int8 };

    /// Plans the graph (fusions, types) and creates the primitives for `batch_size` (fp32 mode; int8
    /// primitives are created by calibrate()). Keeps a reference to `graph`, which must outlive it.
    /// @param batch_size >= 1; batches of other sizes get primitives of their own, created on first use
    /// @param activation_bytes the activation memory a plan of fp32 runs and of calibration may hold:
    ///        larger batches run in chunks that fit (0: 512 MiB; DCS_ACTIVATION_MB overrides both)
    /// @throws InputError on a graph it cannot plan (not one input, bad shapes); UnsupportedError (an
    ///         InputError) on an operator configuration it cannot serve, naming the node, including
    ///         oneDNN refusing a primitive
    DnnlExecutor(const Graph& graph, Mode mode, int64_t batch_size, size_t activation_bytes = 0);
    ~DnnlExecutor();
    DnnlExecutor(const DnnlExecutor&) = delete;
    DnnlExecutor& operator=(const DnnlExecutor&) = delete;
    DnnlExecutor(DnnlExecutor&&) noexcept;
    DnnlExecutor& operator=(DnnlExecutor&&) noexcept;

    Mode mode() const;

    /// Int8 only: runs the fp32 graph (oneDNN fp32, with the same fusions) over the calibration batches,
    /// observes every activation the int8 path materialises, and sets the activation scales with
    /// `spec` (minmax, percentile or MSE). Then quantizes every layer to 8 bits per channel (as
    /// set_weights({})) and drops primitives made for earlier scales.
    /// @throws std::logic_error in fp32 mode; InputError when `batches` is empty or a batch does not fit;
    ///         std::invalid_argument (from the observer) on a non-finite activation
    void calibrate(const std::vector<Tensor>& batches, const compress::CalibrationSpec& spec = {});

    /// Int8 only: the candidate's weights by layer (node) name. Layers not named use the 8-bit
    /// per-channel max-abs quantization of their fp32 weight. Costs the codes' reorders, done lazily
    /// on the next run() of each batch size.
    /// @throws std::logic_error before calibrate(); InputError naming the layer when a name is not a
    ///         compressible layer or the codes / scales do not match the weight
    void set_weights(const std::map<std::string, Int8LayerWeights>& layers);

    /// A layer's weights made ready for this executor: its integer parameters (make_qlayer, with bias
    /// correction when on) and its codes reordered into the weight layout of every primitive made so far.
    /// Immutable; loading it again costs pointer swaps only. Defined in runtime/dnnl/plan.hpp.
    struct PreparedLayer;
    using Prepared = std::shared_ptr<const PreparedLayer>;

    /// Int8 only: prepares `weights` for layer (node) `layer` with the current calibration and bias
    /// correction. For caches: prepare once, load() many times. Primitives made later (a new batch size)
    /// get the codes reordered on their first use.
    /// @throws std::logic_error before calibrate(); InputError naming the layer when it is not a
    ///         compressible layer or the codes / scales do not match the weight
    Prepared prepare_layer(const std::string& layer, Int8LayerWeights weights);  // an rvalue: no copy of the codes

    /// Memory held by a prepared layer (parameters and reordered codes), for cache accounting.
    static size_t prepared_bytes(const PreparedLayer& layer);

    /// Whether prepare_layer() keeps a layer's codes in the initializer's layout (default: yes). With
    /// false, a layer prepared when every primitive made so far reads its weights through a oneDNN
    /// layout (no host kernel) keeps only the reordered copies: half the memory, and no fresh pages for
    /// a cache that keeps many. Call prepare() for every batch size first: loading such a layer into
    /// primitives made after it, or quantized_model() while it is loaded, throws std::logic_error.
    void set_keep_codes(bool keep);

    /// Int8 only: loads prepared layers (any subset of the compressible layers; the others keep their
    /// weights). A layer whose prepared weights are already loaded costs nothing; another costs pointer
    /// swaps (and a reorder only for layouts made after it was prepared). The executor holds the loaded
    /// layers until they are replaced. quantized_model() reflects them from its next call.
    /// @throws std::logic_error before calibrate(), on a null pointer, or on a layer prepared before the
    ///         latest calibrate() or set_bias_correction() change
    void load(const std::vector<Prepared>& layers);

    /// Int8 only: bias correction on or off (default off) for the following set_weights() calls. When
    /// on, each layer's bias absorbs the mean output shift its weight quantization causes, measured on
    /// the calibration set (see bias_shift() in runtime/int8_reference.hpp); the integer reference
    /// sees the corrected biases through quantized_model().
    /// @throws std::logic_error in fp32 mode
    void set_bias_correction(bool on);

    /// Int8, after calibrate(): the sub-batch size of run() (see there).
    int64_t sub_batch() const;

    /// Int8, after calibrate(): the image streams of run() (see there).
    int streams() const;

    /// Runs one batch (any batch size >= 1) of graph input 0 and returns graph output 0 as fp32. In
    /// int8 mode, a batch larger than the sub-batch size chosen at calibrate() runs as sub-batches of
    /// at most that size, so that each step's activations stay in the L2 caches. With one stream the
    /// sub-batches run one after another, each step on every OMP thread; with several (the default
    /// when OMP_NUM_THREADS > 1), each thread takes whole sub-batches through the network alone, with
    /// no barrier between steps. The results are the same. DCS_SUB_BATCH=N sets the size (0: whole
    /// batches), DCS_STREAMS=N the streams (1: every thread in every step).
    /// @throws InputError when the input's per-sample shape does not match the model;
    ///         std::logic_error in int8 mode before calibrate()
    Tensor run(const Tensor& input);

    /// Creates the primitives for `batch_size` (int8: for its sub-batches; when not yet made) and, in int8 mode, reorders the
    /// current weights into their layouts, which run() would otherwise do on its first call: after
    /// prepare(), run() of that batch size is the forward pass only.
    /// @throws std::logic_error in int8 mode before calibrate(); UnsupportedError as the constructor
    void prepare(int64_t batch_size);

    /// The plan and (int8, after calibrate()) the current quantized layers, for the integer reference.
    /// set_weights() updates the returned model in place; after load(), call this again to see the
    /// loaded layers (they are copied into the model on that call, not on every load).
    const QuantizedModel& quantized_model() const;

    /// The primitive implementations chosen for the batch size (int8: for its sub-batches), one line per step ("<node>: convolution
    /// brgconv:..."), in execution order, then the per-candidate weight reorders ("<node>: weights:
    /// reorder ..."); host fallbacks read "host fallback". Lines of int8 convolutions and pooling end
    /// with the reasons of the kernel table's rows that declined the layer before the chosen kernel
    /// ("conv2: convolution host:conv_vnni_avx512 (u8 -> u8) (declined: conv_ic1: input channels 6 > 1;
    /// ...)"). Creates the primitives when needed. For checks that no hot layer uses a `ref:` kernel, and
    /// `dcsearch eval --explain`.
    /// @throws std::logic_error in int8 mode before calibrate()
    std::vector<std::string> implementations(int64_t batch_size);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dcs
