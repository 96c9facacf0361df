#!/usr/bin/python3
"""Train the example model zoo on Fashion-MNIST and export it to ONNX.

Run with Debian's interpreter (it has python3-torch, python3-onnx, python3-numpy):

    /usr/bin/python3 scripts/train_zoo.py [--models lenet5,lenet300,resnet_bn] [--epochs N]

Not run by setup or tests; the outputs are committed:

  configs/<name>.onnx                 the model (opset 13, dynamic batch axis "batch",
                                      input "input" [N,1,28,28], output "logits" [N,10])
  configs/<name>.accuracy.json        PyTorch fp32 accuracy on the full 10k t10k test set
  configs/<name>.yaml                 search config (validation = test images 512..2511)
  configs/<name>-full.yaml            same, validation = the whole 10k test set
  tests/data/models/<name>/model.onnx
  tests/data/models/<name>/test_data_set_0/{input_0.pb,output_0.pb}
                                      first 64 preprocessed test images and PyTorch logits,
                                      as ONNX TensorProto (the ONNX backend test layout)

Data comes only from /usr/share/datasets/fashion-mnist (IDX gzip files parsed here).
Preprocessing is the tool's: x = (pixel * (1/255) - 0.2860) / 0.3530.
"""

import argparse
import gzip
import json
import os
import shutil
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = "/usr/share/datasets/fashion-mnist"
CONFIG_DIR = os.path.join(ROOT, "configs")
TEST_MODEL_DIR = os.path.join(ROOT, "tests", "data", "models")

SCALE = 0.00392156862745098  # 1/255
MEAN = 0.2860
STD = 0.3530
SEED = 1234
BATCH = 128
OPSET = 13


# ----------------------------------------------------------------------------- data

def read_idx(path):
    """Parse an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: bad IDX magic")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: only unsigned byte IDX supported (type 0x{dtype_code:02x})")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, count=int(np.prod(dims)), offset=offset)
    return arr.reshape(dims)


def preprocess(images_u8):
    """uint8 [N,28,28] -> float32 [N,1,28,28], the same arithmetic as the tool (float32)."""
    x = images_u8.astype(np.float32) * np.float32(SCALE)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return x[:, None, :, :].astype(np.float32)


def load_split(prefix):
    images = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    assert images.shape[0] == labels.shape[0]
    return preprocess(images), labels.astype(np.int64)


# ----------------------------------------------------------------------------- models

class LeNet5(nn.Module):
    """LeNet-5 for 28x28 inputs: the first conv is padded so the feature maps match 32x32 LeNet."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 6x14x14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 16x5x5
        x = torch.flatten(x, 1)                      # exports Flatten (no Shape/Gather)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet300(nn.Module):
    """LeNet-300-100 MLP."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ResNetBN(nn.Module):
    """Small CNN with BatchNorm and one identity residual block (~29k parameters)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        # residual block at 14x14, identity skip added before the ReLU
        self.res_conv1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.res_bn1 = nn.BatchNorm2d(16)
        self.res_conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.res_bn2 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.pool = nn.AdaptiveAvgPool2d(1)          # exports GlobalAveragePool
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))          # 16x28x28
        x = F.max_pool2d(x, 2)                       # 16x14x14
        y = F.relu(self.res_bn1(self.res_conv1(x)))
        y = self.res_bn2(self.res_conv2(y))
        x = F.relu(x + y)                            # 16x14x14
        x = F.relu(self.bn2(self.conv2(x)))          # 32x14x14
        x = F.max_pool2d(x, 2)                       # 32x7x7
        x = F.relu(self.bn3(self.conv3(x)))          # 64x7x7
        x = torch.flatten(self.pool(x), 1)           # 64
        return self.fc(x)


MODELS = {
    "lenet5": (LeNet5, 15),
    "lenet300": (LeNet300, 15),
    "resnet_bn": (ResNetBN, 15),
}


# ----------------------------------------------------------------------------- training

def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model(x[i:i + batch]).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
    return correct


def train(name, epochs, train_x, train_y, test_x, test_y):
    torch.manual_seed(SEED)
    cls = MODELS[name][0]
    model = cls()
    params = sum(p.numel() for p in model.parameters())
    print(f"== {name}: {params} parameters, {epochs} epochs", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(SEED)
    n = train_x.shape[0]
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        te = time.time()
        perm = torch.randperm(n, generator=gen)
        total_loss, total_correct = 0.0, 0
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = train_x[idx], train_y[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += float(loss) * idx.numel()
            total_correct += int((out.argmax(1) == yb).sum())
        sched.step()
        test_correct = evaluate(model, test_x, test_y)
        print(f"  epoch {epoch + 1}/{epochs}: loss {total_loss / n:.4f} "
              f"train acc {total_correct / n:.4f} test acc {test_correct / test_x.shape[0]:.4f} "
              f"({time.time() - te:.1f} s)", flush=True)
    train_seconds = time.time() - t0
    model.eval()
    return model, params, train_seconds


# ----------------------------------------------------------------------------- export

def export_onnx(model, path, opset=OPSET):
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model, dummy, path,
        opset_version=opset,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
    )
    m = onnx.load(path)
    rename_layers(m)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def rename_layers(m):
    """PyTorch 1.13 names nodes after the module path ("/fc1/Gemm"); give the compressible
    layers the plain module name ("fc1", "res_conv1") so that layers.yaml and `match:` globs
    read like DESIGN.md's examples.  Only node names change, not the computation."""
    taken = {n.name for n in m.graph.node}
    for n in m.graph.node:
        parts = n.name.strip("/").split("/")
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(parts) >= 2 and parts[-1] == n.op_type:
            new = ".".join(parts[:-1])
            if new not in taken:
                taken.discard(n.name)
                taken.add(new)
                n.name = new


def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString())


def config_text(name, validation_offset, validation_count):
    return f"""\
# Example search config for {name} (trained by scripts/train_zoo.py, see docs/models.md).
# Relative paths are relative to this file.
model:
  path: {name}.onnx
  preprocess: {{scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}}
dataset:
  format: idx
  images: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
  calibration: {{offset: 0, count: 512}}
  validation: {{offset: {validation_offset}, count: {validation_count}}}
compression:
  weight_bits: [2, 3, 4, 5, 6, 8]
  prune_ratios: [0.0, 0.25, 0.5, 0.75, 0.9]
  granularity: per_channel
  scheme: symmetric
  pruning: unstructured
  activation_bits: 8
  calibration: minmax
search:
  algorithm: nsga2
  population: 32
  generations: 20
  seed: 1
  max_accuracy_drop: 2.0
  objectives: [accuracy, size]
output:
  path: results/{name}.h5
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--epochs", type=int, default=None, help="override the per-model epoch count")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    np.random.seed(SEED)

    t_start = time.time()
    train_x, train_y = (torch.from_numpy(a) for a in load_split("train"))
    test_x_np, test_y_np = load_split("t10k")
    test_x, test_y = torch.from_numpy(test_x_np), torch.from_numpy(test_y_np)
    print(f"data: train {tuple(train_x.shape)}, test {tuple(test_x.shape)}", flush=True)

    os.makedirs(CONFIG_DIR, exist_ok=True)
    summary = []
    for name in args.models.split(","):
        if name not in MODELS:
            sys.exit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        epochs = args.epochs or MODELS[name][1]
        model, params, train_seconds = train(name, epochs, train_x, train_y, test_x, test_y)

        onnx_path = os.path.join(CONFIG_DIR, f"{name}.onnx")
        m = export_onnx(model, onnx_path)
        ops = sorted({n.op_type for n in m.graph.node})
        print(f"  exported {onnx_path}: {os.path.getsize(onnx_path)} bytes, ops {ops}", flush=True)

        correct = evaluate(model, test_x, test_y)
        acc = correct / test_x.shape[0]
        info = {
            "model": name,
            "pytorch_accuracy": acc,
            "correct": correct,
            "samples": int(test_x.shape[0]),
            "test_set": "fashion-mnist t10k",
            "preprocess": {"scale": SCALE, "mean": [MEAN], "std": [STD]},
            "torch_version": torch.__version__,
            "epochs": epochs,
            "parameters": params,
            "train_seconds": round(train_seconds, 1),
            "seed": SEED,
            "opset": OPSET,
        }
        with open(os.path.join(CONFIG_DIR, f"{name}.accuracy.json"), "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")

        with open(os.path.join(CONFIG_DIR, f"{name}.yaml"), "w") as f:
            f.write(config_text(name, 512, 2000))
        with open(os.path.join(CONFIG_DIR, f"{name}-full.yaml"), "w") as f:
            f.write(config_text(name, 0, 10000))

        # ONNX backend-test layout for the C++ test runner
        tdir = os.path.join(TEST_MODEL_DIR, name)
        ddir = os.path.join(tdir, "test_data_set_0")
        os.makedirs(ddir, exist_ok=True)
        shutil.copyfile(onnx_path, os.path.join(tdir, "model.onnx"))
        x64 = test_x[:64]
        with torch.no_grad():
            logits = model(x64).numpy().astype(np.float32)
        write_tensor(os.path.join(ddir, "input_0.pb"), x64.numpy(), "input")
        write_tensor(os.path.join(ddir, "output_0.pb"), logits, "logits")

        # Cross-check the exported graph with the numpy/torch reference evaluator
        # from make_test_models.py (no onnxruntime available here).
        try:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from make_test_models import run_reference
            ref = run_reference(m, {"input": x64.numpy()})[0]
            diff = float(np.abs(ref - logits).max())
            same = bool((ref.argmax(1) == logits.argmax(1)).all())
            print(f"  reference ONNX evaluation on 64 images: max |diff| {diff:.2e}, "
                  f"same predictions {same}", flush=True)
        except ImportError:
            pass

        print(f"  {name}: test accuracy {acc:.4f} ({correct}/10000), training {train_seconds:.1f} s",
              flush=True)
        summary.append((name, params, epochs, acc, train_seconds))

    print("\nsummary:")
    for name, params, epochs, acc, secs in summary:
        print(f"  {name:10s} {params:7d} params  {epochs:2d} epochs  acc {acc:.4f}  train {secs:6.1f} s")
    print(f"total time {time.time() - t_start:.1f} s")


if __name__ == "__main__":
    main()
