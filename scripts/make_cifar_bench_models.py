#!/usr/bin/python3
"""CIFAR-shaped conv models (3x32x32 input, per-channel preprocessing, an HDF5 dataset) for the runtime
benchmark: three input channels and 32x32 images, which neither the examples nor the other benchmark
scripts (scripts/make_bench_models.py, scripts/make_survey_models.py, all 1x28x28) have.

    /usr/bin/python3 scripts/make_cifar_bench_models.py OUT_DIR
    OMP_NUM_THREADS=2 scripts/bench_runtime.sh OUT_DIR/*.yaml

Writes OUT_DIR/cifar-random.h5 (/images uint8 [2512, 3, 32, 32], /labels int64 [2512]) and OUT_DIR/<name>.onnx
and OUT_DIR/<name>.yaml (the lenet5 example's search config with the model swapped, a per-channel preprocess
and the HDF5 dataset: calibration samples 0..511, validation 512..2511) for (input 3x32x32, 10 classes):

  cifar_res  3x3 stem 3->16 + BN, three residual stages 16/32/64 (32x32, 16x16, 8x8; each a block of two 3x3
             convs + BN) with stride-2 convs 16->32 and 32->64 between them, BatchNorm, global average pool,
             FC 64->10
  cifar_mob  depthwise-separable: 3x3 stride-2 stem 3->32 (16x16), dw + pw 32->64, dw s2 (8x8) + pw 64->128,
             dw + pw 128->128, dw s2 (4x4) + pw 128->256, global average pool, FC 256->10
  cifar_vgg  3x3 convs 3->32->32, pool, 32->64->64, pool, 64->128, pool, FC 2048->128->10 (padding 1)

The dataset is noise: uniform random pixels and random labels (seed 0), so accuracy is chance level whatever
the model and only speed means anything. Weights are random (seed 0), not trained: speed does not depend on
them. Every model uses only operators of docs/onnx-support.md (checked after export) and is under 5 MB.
Needs python3-torch, python3-onnx and python3-h5py (Debian). Not run by setup or tests.
"""
import os
import re
import sys

import h5py
import numpy as np
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bench_models  # noqa: E402  (write_models)
import make_survey_models  # noqa: E402  (check_model, dw_pw)


DATA = "cifar-random.h5"
SAMPLES = 2512  # calibration 0..511, validation 512..2511

PREPROCESS = "  preprocess: {scale: 0.00392156862745098, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26]}"
DATASET = ("dataset:\n"
           "  hdf5: {file: " + DATA + ", images: /images, labels: /labels}\n"
           "  calibration: {offset: 0, count: 512}\n"
           "  validation: {offset: 512, count: 2000}\n")


class Block(nn.Module):
    """Two 3x3 convs with BatchNorm, added to the input."""

    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.ba = nn.BatchNorm2d(c)
        self.b = nn.Conv2d(c, c, 3, padding=1)
        self.bb = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bb(self.b(F.relu(self.ba(self.a(x))))))


class CifarRes(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.b1 = Block(16)
        self.d2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.b2 = Block(32)
        self.d3 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.b3 = Block(64)
        self.f = nn.Linear(64, 10)

    def forward(self, x):
        x = self.b1(F.relu(self.bn(self.c(x))))
        x = self.b2(F.relu(self.d2(x)))
        x = self.b3(F.relu(self.d3(x)))
        return self.f(F.adaptive_avg_pool2d(x, 1).flatten(1))


class CifarMob(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU())
        self.b1 = make_survey_models.dw_pw(32, 64, 1)
        self.b2 = make_survey_models.dw_pw(64, 128, 2)
        self.b3 = make_survey_models.dw_pw(128, 128, 1)
        self.b4 = make_survey_models.dw_pw(128, 256, 2)
        self.f = nn.Linear(256, 10)

    def forward(self, x):
        x = self.b4(self.b3(self.b2(self.b1(self.stem(x)))))
        return self.f(F.adaptive_avg_pool2d(x, 1).flatten(1))


class CifarVgg(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1)
        self.c5 = nn.Conv2d(64, 128, 3, padding=1)
        self.f1 = nn.Linear(128 * 4 * 4, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2)
        x = F.max_pool2d(F.relu(self.c5(x)), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))


MODELS = [("cifar_res", CifarRes), ("cifar_mob", CifarMob), ("cifar_vgg", CifarVgg)]


def write_data(path):
    """Noise in the shape of the CIFAR-10 test set: uint8 images N x 3 x 32 x 32, int64 labels 0..9 (seed 0)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.integers(0, 256, size=(SAMPLES, 3, 32, 32), dtype=np.uint8)
        f["labels"] = rng.integers(0, 10, size=(SAMPLES,), dtype=np.int64)
    return "%s  %d bytes  images %d x 3 x 32 x 32" % (path, os.path.getsize(path), SAMPLES)


def swap(text, pattern, replacement):
    """text with the one match of the regular expression pattern replaced; exits if it does not match once."""
    text, n = re.subn(pattern, lambda m: replacement, text, flags=re.M)
    if n != 1:
        sys.exit("make_cifar_bench_models.py: configs/lenet5.yaml: %d matches for %r (expected 1)" % (n, pattern))
    return text


def edit_config(text, name):
    """The config (make_bench_models.write_models's, for this model) with the preprocess and the dataset
    (HDF5) swapped."""
    text = swap(text, r"^  preprocess: .*$", PREPROCESS)
    text = swap(text, r"^dataset:\n(?:  .*\n)*", DATASET)
    if "format: idx" in text or re.search(r"^  (images|labels):", text, flags=re.M):
        sys.exit("make_cifar_bench_models.py: %s.yaml would mix idx and hdf5 dataset keys" % name)
    return text


def write_models(out):
    """Writes out/cifar-random.h5, then each model and its config through make_bench_models.write_models
    (3x32x32 input, the config edited by edit_config)."""
    os.makedirs(out, exist_ok=True)
    print(write_data(os.path.join(out, DATA)))
    make_bench_models.write_models(out, MODELS, "make_cifar_bench_models.py",
                                   lambda name, path: make_survey_models.check_model(name, path,
                                                                                     "make_cifar_bench_models.py"),
                                   input_shape=(1, 3, 32, 32), edit_config=edit_config)


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: make_cifar_bench_models.py OUT_DIR")
    write_models(os.path.abspath(sys.argv[1]))


if __name__ == "__main__":
    main()
