#pragma once
/// The compress/ library in one include: compress_weight() and CompressedWeight (weight.hpp), the
/// method table (method.hpp), pruning (prune.hpp), activation calibration (calibrate.hpp) and the .dcz
/// packed format with its size (dcz.hpp). Pure tensor code: no MPI, no oneDNN.
#include "compress/calibrate.hpp"
#include "compress/dcz.hpp"
#include "compress/method.hpp"
#include "compress/prune.hpp"
#include "compress/types.hpp"
#include "compress/weight.hpp"
