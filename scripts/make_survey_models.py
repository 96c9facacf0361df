#!/usr/bin/python3
"""More conv models for the runtime benchmark: a survey of shapes neither the examples nor
scripts/make_bench_models.py have, to find where the int8 runtime falls behind ONNX Runtime.

    /usr/bin/python3 scripts/make_survey_models.py [--wide-depthwise] OUT_DIR
    OMP_NUM_THREADS=1 scripts/bench_runtime.sh OUT_DIR/*.yaml

Writes OUT_DIR/<name>.onnx and OUT_DIR/<name>.yaml (the lenet5 example's search config with the model
swapped) for (input 1x28x28, 10 classes):

  wide_lenet  5x5 convs 1->32, pool, 32->64, pool (padding 2), FC 3136->128->10
  stem7       7x7 stride-2 conv 1->32 (14x14), 3x3 32->64, pool, 3x3 64->64 and 64->64 at 7x7, FC 3136->10
  plain7      3x3 convs 1->32, pool, 32->64, pool, then 64->128, 128->128, 128->128 at 7x7, FC 6272->10
  grouped     3x3 conv 1->32, grouped 3x3 32->64 (groups 2), pool, 64->128 (groups 4), 128->128
              (groups 4), pool, FC 6272->10
  avgpool     3x3 convs 1->32, avg pool, 32->64, avg pool, 64->64, avg pool (3x3), FC 576->10
  bn_every    conv + BatchNorm + ReLU everywhere: 1->16, 16->32, pool, 32->64, 64->64, pool, FC 3136->10
  resnet_ds   ResNet: 3x3 stem 1->16, a 16-channel block (28x28), stride-2 blocks to 32 (14x14) and to 64
              (7x7) with 1x1 stride-2 shortcut convs, BatchNorm, global average pool, FC 64->10
  mbv2        MobileNetV2: 3x3 stem 1->16, inverted residual blocks (1x1 expand x4, 3x3 depthwise,
              1x1 project, residual add when the shape allows, ReLU6) 16->16, 16->24 s2, 24->24,
              24->32 s2, 32->32; 1x1 32->128, global average pool, FC 128->10
  dwsep       depthwise-separable: 3x3 stride-2 stem 1->32 (14x14), dw + pw 32->64, dw s2 (7x7) + pw
              64->128, dw + pw 128->128, global average pool, FC 128->10
  valid       padding 0 and odd sizes: 4x4 1->16 (25x25), 3x3 16->32 (23x23), max pool 3 stride 2
              (11x11), 3x3 32->48 (9x9), 3x3 48->64 (7x7), FC 3136->10
  gap_gemm    3x3 convs 1->32 (28x28), 32->64 s2 (14x14), 64->128 s2 (7x7), 128->256 (7x7), global
              average pool, Gemm 256->10
  wide_dw     3x3 stride-2 stem 1->32 (14x14), 1x1 32->256, dw + pw 256->256, dw s2 (7x7), 1x1 256->64,
              FC 3136->10 (depthwise layers with 256 channels)

With --wide-depthwise it writes instead (only) six models with wide depthwise layers, each followed by a 1x1
conv to 64 channels at 7x7 and FC 3136->10:

  dw192       3x3 stride-2 stem 1->32 (14x14), 1x1 32->192, dw 3x3, dw 3x3 s2 (7x7), 1x1 192->64
  dw256       the same with 256 channels
  dw384       the same with 384 channels
  dw512k5     3x3 stride-2 convs 1->32 (14x14), 32->64 (7x7), 1x1 64->512, dw 5x5 (padding 2), 1x1 512->64
  dw576k3     the same with 576 channels and a dw 3x3 (padding 1)
  dw960k3     the same as dw576k3 with 960 channels

Weights are random (seed 0), not trained: speed does not depend on them, accuracy is chance level.
Every model uses only operators of docs/onnx-support.md (checked after export) and is under 5 MB.
Needs python3-torch and python3-onnx (Debian). Not run by setup or tests.
"""
import functools
import os
import sys

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bench_models  # noqa: E402  (write_models)


SUPPORTED = {"Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
             "Flatten", "Reshape", "Pad", "Constant", "Identity", "Dropout", "BatchNormalization", "Concat",
             "Softmax"}


class WideLenet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 5, padding=2)
        self.c2 = nn.Conv2d(32, 64, 5, padding=2)
        self.f1 = nn.Linear(64 * 7 * 7, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))


class Stem7(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 7, stride=2, padding=3)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1)
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.c4(F.relu(self.c3(x))))
        return self.f(x.flatten(1))


class Plain7(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 128, 3, padding=1)
        self.c4 = nn.Conv2d(128, 128, 3, padding=1)
        self.c5 = nn.Conv2d(128, 128, 3, padding=1)
        self.f = nn.Linear(128 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.c5(F.relu(self.c4(F.relu(self.c3(x))))))
        return self.f(x.flatten(1))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1, groups=2)
        self.c3 = nn.Conv2d(64, 128, 3, padding=1, groups=4)
        self.c4 = nn.Conv2d(128, 128, 3, padding=1, groups=4)
        self.f = nn.Linear(128 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2)
        return self.f(x.flatten(1))


class AvgPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.f = nn.Linear(64 * 3 * 3, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.c1(x)), 2)
        x = F.avg_pool2d(F.relu(self.c2(x)), 2)
        x = F.avg_pool2d(F.relu(self.c3(x)), 2)
        return self.f(x.flatten(1))


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class BnEvery(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = conv_bn(1, 16)
        self.c2 = conv_bn(16, 32)
        self.c3 = conv_bn(32, 64)
        self.c4 = conv_bn(64, 64)
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(self.c2(self.c1(x)), 2)
        x = F.max_pool2d(self.c4(self.c3(x)), 2)
        return self.f(x.flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.ba = nn.BatchNorm2d(cout)
        self.b = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bb = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        s = x if self.short is None else self.short(x)
        return F.relu(s + self.bb(self.b(F.relu(self.ba(self.a(x))))))


class ResnetDs(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16)
        self.l1 = BasicBlock(16, 16, 1)
        self.l2 = BasicBlock(16, 32, 2)
        self.l3 = BasicBlock(32, 64, 2)
        self.f = nn.Linear(64, 10)

    def forward(self, x):
        x = self.l3(self.l2(self.l1(self.stem(x))))
        return self.f(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class Mbv2(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1), InvertedResidual(16, 24, 2),
                                    InvertedResidual(24, 24, 1), InvertedResidual(24, 32, 2),
                                    InvertedResidual(32, 32, 1))
        self.head = nn.Sequential(nn.Conv2d(32, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU6())
        self.f = nn.Linear(128, 10)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.f(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def dw_pw(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin), nn.ReLU(),
                         nn.Conv2d(cin, cout, 1), nn.ReLU())


class DwSep(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU())
        self.b1 = dw_pw(32, 64, 1)
        self.b2 = dw_pw(64, 128, 2)
        self.b3 = dw_pw(128, 128, 1)
        self.f = nn.Linear(128, 10)

    def forward(self, x):
        x = self.b3(self.b2(self.b1(self.stem(x))))
        return self.f(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class WideDw(nn.Module):
    """MobileNet-style with many channels: the depthwise layers beyond 128 channels."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 256, 1), nn.ReLU())
        self.b1 = dw_pw(256, 256, 1)
        self.dw = nn.Sequential(nn.Conv2d(256, 256, 3, stride=2, padding=1, groups=256), nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(256, 64, 1), nn.ReLU())
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        return self.f(self.pw(self.dw(self.b1(self.stem(x)))).flatten(1))


class WideDwPair(nn.Module):
    """Two depthwise 3x3 layers (stride 1, then stride 2) with c channels and no pointwise conv between them."""

    def __init__(self, c):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, c, 1), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.ReLU(),
                                nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c), nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(c, 64, 1), nn.ReLU())
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        return self.f(self.pw(self.dw(self.stem(x))).flatten(1))


class WideDwKernel(nn.Module):
    """One depthwise k x k layer (stride 1, same padding) with c channels at 7x7."""

    def __init__(self, c, k):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(64, c, 1), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, groups=c), nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(c, 64, 1), nn.ReLU())
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        return self.f(self.pw(self.dw(self.stem(x))).flatten(1))


class Valid(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 4)
        self.c2 = nn.Conv2d(16, 32, 3)
        self.c3 = nn.Conv2d(32, 48, 3)
        self.c4 = nn.Conv2d(48, 64, 3)
        self.f = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.relu(self.c4(F.relu(self.c3(x))))
        return self.f(x.flatten(1))


class GapGemm(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(64, 128, 3, stride=2, padding=1)
        self.c4 = nn.Conv2d(128, 256, 3, padding=1)
        self.f = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        x = F.relu(self.c4(F.relu(self.c3(x))))
        return self.f(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = [("wide_lenet", WideLenet), ("stem7", Stem7), ("plain7", Plain7), ("grouped", Grouped),
          ("avgpool", AvgPool), ("bn_every", BnEvery), ("resnet_ds", ResnetDs), ("mbv2", Mbv2),
          ("dwsep", DwSep), ("valid", Valid), ("gap_gemm", GapGemm), ("wide_dw", WideDw)]

WIDE_DEPTHWISE_MODELS = [("dw192", functools.partial(WideDwPair, 192)), ("dw256", functools.partial(WideDwPair, 256)),
                         ("dw384", functools.partial(WideDwPair, 384)),
                         ("dw512k5", functools.partial(WideDwKernel, 512, 5)),
                         ("dw576k3", functools.partial(WideDwKernel, 576, 3)),
                         ("dw960k3", functools.partial(WideDwKernel, 960, 3))]


def check_model(name, path, script="make_survey_models.py"):
    """Exits unless the exported model uses only SUPPORTED operators and is under 5 MB; returns a line to print."""
    ops = {n.op_type for n in onnx.load(path).graph.node}
    if ops - SUPPORTED:
        sys.exit("%s: %s uses unsupported operators %s" % (script, name, sorted(ops - SUPPORTED)))
    size = os.path.getsize(path)
    if size > 5 * 1024 * 1024:
        sys.exit("%s: %s is %d bytes (over 5 MB)" % (script, name, size))
    return "%s  %d bytes  ops %s" % (path, size, " ".join(sorted(ops)))


def main():
    args = sys.argv[1:]
    wide_depthwise = "--wide-depthwise" in args
    if wide_depthwise:
        args.remove("--wide-depthwise")
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit("usage: make_survey_models.py [--wide-depthwise] OUT_DIR")

    make_bench_models.write_models(os.path.abspath(args[0]), WIDE_DEPTHWISE_MODELS if wide_depthwise else MODELS,
                                   "make_survey_models.py", check_model)


if __name__ == "__main__":
    main()
