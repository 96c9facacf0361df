#!/usr/bin/python3
"""Conv models beyond the examples, for the runtime benchmark: shapes the examples do not have.

    /usr/bin/python3 scripts/make_bench_models.py OUT_DIR
    OMP_NUM_THREADS=2 scripts/bench_runtime.sh OUT_DIR/*.yaml

Writes OUT_DIR/<name>.onnx and OUT_DIR/<name>.yaml (the lenet5 example's search config with the model
swapped) for:

  vgg     3x3 convs 1->32->32, pool, 32->64->64, pool, FC 3136->128->10 (padding 1)
  caffe   Caffe's LeNet: 5x5 convs 1->20, pool, 20->50, pool, FC 800->500->10, no ReLU after the convs
  res     1->32 conv + BN, a 32-channel residual block, stride-2 conv to 64, a 64-channel block, global
          average pool, FC (BatchNorm with non-trivial statistics)
  mobile  MobileNet-style: stride-2 conv 1->16, depthwise 3x3 + pointwise 16->32, depthwise stride 2 +
          pointwise 32->64, FC

Weights are random (seed 0), not trained: speed does not depend on them, accuracy is chance level.
Needs python3-torch and python3-onnx (Debian). Not run by setup or tests.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Vgg(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1)
        self.f1 = nn.Linear(64 * 7 * 7, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))


class Caffe(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 20, 5)
        self.c2 = nn.Conv2d(20, 50, 5)
        self.f1 = nn.Linear(50 * 4 * 4, 500)
        self.f2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2)
        x = F.max_pool2d(self.c2(x), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.ba = nn.BatchNorm2d(c)
        self.b = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bb = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bb(self.b(F.relu(self.ba(self.a(x))))))


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.b1 = Block(32)
        self.d = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.b2 = Block(64)
        self.f = nn.Linear(64, 10)

    def forward(self, x):
        x = self.b1(F.relu(self.bn(self.c(x))))
        x = self.b2(F.relu(self.d(x)))
        return self.f(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Mobile(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.dw2 = nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)
        self.pw2 = nn.Conv2d(32, 64, 1)
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.c(x))
        x = F.relu(self.pw(F.relu(self.dw(x))))
        x = F.relu(self.pw2(F.relu(self.dw2(x))))
        return self.f(x.flatten(1))


def write_models(out, models, script, check=None, input_shape=(1, 1, 28, 28), edit_config=None):
    """Exports each (name, model class) to out/<name>.onnx (random weights, seed 0; BatchNorm statistics
    made non-trivial; an input of input_shape, the batch dimension dynamic) and writes out/<name>.yaml, the
    lenet5 example's config with the model swapped. check(name, path), when given, runs on each exported
    file and returns a line to print; edit_config(text, name), when given, returns the config text to write."""
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    with open(os.path.join(ROOT, "configs", "lenet5.yaml")) as f:
        config = f.read()
    for name, cls in models:
        model = cls()
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        path = os.path.join(out, name + ".onnx")
        torch.onnx.export(model, torch.randn(*input_shape), path, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
        line = check(name, path) if check else path
        text = config.replace("path: lenet5.onnx", "path: " + name + ".onnx")
        text = text.replace("path: results/lenet5.h5", "path: " + os.path.join(out, name + ".h5"))
        text = text.replace(text.splitlines()[0],
                            "# Benchmark config for " + name + " (scripts/" + script + ", random weights).")
        if edit_config:
            text = edit_config(text, name)
        with open(os.path.join(out, name + ".yaml"), "w") as f:
            f.write(text)
        print(line)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_bench_models.py OUT_DIR")
    write_models(os.path.abspath(sys.argv[1]), [("vgg", Vgg), ("caffe", Caffe), ("res", Res), ("mobile", Mobile)],
                 "make_bench_models.py")


if __name__ == "__main__":
    main()
