#!/usr/bin/python3
"""Generate the small ONNX test models for the C++ importer and runtime tests.

    /usr/bin/python3 scripts/make_test_models.py [--only NAME[,NAME...]] [--probe]

Each model gets random (seeded) weights and is written in the layout of ONNX's backend tests:

    tests/data/models/<name>/model.onnx
    tests/data/models/<name>/test_data_set_0/input_0.pb    random input, batch 3 (TensorProto)
    tests/data/models/<name>/test_data_set_0/output_0.pb   PyTorch output in eval mode (TensorProto)

Models come from PyTorch (torch.onnx.export, eval mode, do_constant_folding=True, input "input",
output "output", dynamic batch axis "batch", opset 13 unless the name says otherwise) and a few are
built by hand with onnx.helper to get nodes PyTorch never exports (attribute-style Clip at opset 7,
Dropout, Identity, Constant).  BatchNorm layers get random running_mean/var, weight and bias so that
folding mistakes show.

The script refuses to write a model that uses an op outside SUPPORTED_OPS, and cross-checks every
exported graph with a small reference evaluator (run_reference, below: each ONNX op re-implemented
with torch.nn.functional), because onnxruntime is not available here.

--probe exports a few PyTorch constructs that do NOT give a supported graph (x.view(x.size(0), -1),
x.mean((2, 3)), ...) and prints the ops they produce; see docs/models.md.
"""

import argparse
import io
import math
import os
import shutil

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper, TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "models")
SEED = 20240601
BATCH = 3
MAX_BYTES = 200 * 1024

SUPPORTED_OPS = {
    "Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Flatten", "Reshape", "Pad", "Constant", "Identity", "Dropout",
    "BatchNormalization", "Concat", "Softmax",
}


# ============================================================================ reference evaluator

def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pool_pads(pads, nd):
    """ONNX pads [b1..bn, e1..en] -> (begins, ends)."""
    pads = list(pads) if pads else [0] * (2 * nd)
    return pads[:nd], pads[nd:]


def _pool_out(size, k, s, pb, pe, d, ceil):
    """ONNX output size (with the rule, shared with PyTorch, that the last window must start
    inside the input or the begin padding)."""
    eff = d * (k - 1) + 1
    num = size + pb + pe - eff
    out = (math.ceil(num / s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + pb:
        out -= 1
    return out


def run_reference(model, feeds):
    """Evaluate an ONNX model restricted to SUPPORTED_OPS. feeds: name -> numpy array.
    Returns the list of graph outputs as numpy arrays."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    env = {}
    for init in model.graph.initializer:
        env[init.name] = torch.from_numpy(numpy_helper.to_array(init).copy())
    for k, v in feeds.items():
        env[k] = torch.from_numpy(np.asarray(v).copy())

    def get(name):
        return env[name] if name else None

    with torch.no_grad():
        for node in model.graph.node:
            op, a = node.op_type, _attrs(node)
            ins = [get(n) for n in node.input]
            if op == "Conv":
                x, w = ins[0], ins[1]
                b = ins[2] if len(ins) > 2 else None
                nd = w.dim() - 2
                if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                    raise NotImplementedError("Conv auto_pad")
                pb, pe = _pool_pads(a.get("pads"), nd)
                pad = []
                for i in reversed(range(nd)):
                    pad += [pb[i], pe[i]]
                x = F.pad(x, pad)
                y = F.conv2d(x, w, b, stride=a.get("strides", [1] * nd),
                             dilation=a.get("dilations", [1] * nd), groups=a.get("group", 1))
            elif op == "Gemm":
                A, B = ins[0], ins[1]
                if a.get("transA", 0):
                    A = A.t()
                if a.get("transB", 0):
                    B = B.t()
                y = a.get("alpha", 1.0) * (A @ B)
                if len(ins) > 2 and ins[2] is not None:
                    y = y + a.get("beta", 1.0) * ins[2]
            elif op == "MatMul":
                y = torch.matmul(ins[0], ins[1])
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Relu":
                y = torch.relu(ins[0])
            elif op == "Clip":
                if opset < 11:
                    lo, hi = a.get("min", -3.4028234663852886e38), a.get("max", 3.4028234663852886e38)
                else:
                    lo = float(ins[1]) if len(ins) > 1 and ins[1] is not None else -math.inf
                    hi = float(ins[2]) if len(ins) > 2 and ins[2] is not None else math.inf
                y = torch.clamp(ins[0], lo, hi)
            elif op in ("MaxPool", "AveragePool"):
                x = ins[0]
                k = a["kernel_shape"]
                nd = len(k)
                s = a.get("strides", [1] * nd)
                d = a.get("dilations", [1] * nd)
                pb, pe = _pool_pads(a.get("pads"), nd)
                ceil = bool(a.get("ceil_mode", 0))
                outs = [_pool_out(x.shape[2 + i], k[i], s[i], pb[i], pe[i], d[i], ceil) for i in range(nd)]
                # explicit padding up to the last window, then a plain (floor) pool
                pad = []
                for i in reversed(range(nd)):
                    need = (outs[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - (x.shape[2 + i] + pb[i])
                    pad += [pb[i], max(need, 0)]
                if op == "MaxPool":
                    xp = F.pad(x, pad, value=-math.inf)
                    y = F.max_pool2d(xp, k, s, 0, d)
                else:
                    include = bool(a.get("count_include_pad", 0))
                    xp = F.pad(x, pad, value=0.0)
                    ssum = F.avg_pool2d(xp, k, s, 0) * float(np.prod(k))
                    # divisor: window elements inside the input, or inside input+declared pads
                    ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
                    if include:
                        dpad = []
                        for i in reversed(range(nd)):
                            dpad += [pb[i], pe[i]]
                        ones = F.pad(ones, dpad, value=1.0)
                        tail = []
                        for i in reversed(range(nd)):
                            tail += [0, max(pad[2 * (nd - 1 - i) + 1] - pe[i], 0)]
                        ones = F.pad(ones, tail, value=0.0)
                    else:
                        ones = F.pad(ones, pad, value=0.0)
                    cnt = F.avg_pool2d(ones, k, s, 0) * float(np.prod(k))
                    y = ssum / cnt
                y = y[(slice(None), slice(None)) + tuple(slice(0, o) for o in outs)]
            elif op == "GlobalAveragePool":
                y = ins[0].mean(dim=tuple(range(2, ins[0].dim())), keepdim=True)
            elif op == "Flatten":
                axis = a.get("axis", 1)
                if axis < 0:
                    axis += ins[0].dim()
                y = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
            elif op == "Reshape":
                shape = [int(v) for v in ins[1].tolist()]
                if not a.get("allowzero", 0):
                    shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
                y = ins[0].reshape(shape)
            elif op == "Pad":
                mode = a.get("mode", b"constant")
                if mode not in (b"constant", "constant"):
                    raise NotImplementedError(f"Pad mode {mode}")
                if opset < 11:
                    pads, value = a["pads"], a.get("value", 0.0)
                else:
                    pads = [int(v) for v in ins[1].tolist()]
                    value = float(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0
                nd = ins[0].dim()
                pad = []
                for i in reversed(range(nd)):
                    pad += [pads[i], pads[nd + i]]
                y = F.pad(ins[0], pad, value=value)
            elif op == "Constant":
                y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
            elif op in ("Identity", "Dropout"):
                y = ins[0]
            elif op == "BatchNormalization":
                x, sc, bi, mu, var = ins[:5]
                eps = a.get("epsilon", 1e-5)
                shape = (1, -1) + (1,) * (x.dim() - 2)
                y = (x - mu.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps) * sc.reshape(shape) \
                    + bi.reshape(shape)
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            elif op == "Softmax":
                x = ins[0]
                if opset < 13:
                    axis = a.get("axis", 1)
                    if axis < 0:
                        axis += x.dim()
                    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
                    y = torch.softmax(flat, dim=1).reshape(x.shape)
                else:
                    y = torch.softmax(x, dim=a.get("axis", -1))
            else:
                raise NotImplementedError(f"reference evaluator: op {op}")
            env[node.output[0]] = y
            for extra_out in node.output[1:]:
                if extra_out:
                    env[extra_out] = None
    return [env[o.name].numpy() for o in model.graph.output]


# ============================================================================ constant folding

def _np_const_op(node, ins, opset):
    """numpy evaluation of the shape-arithmetic ops PyTorch emits around Pad (all inputs constant)."""
    op, a = node.op_type, _attrs(node)
    if op == "Constant":
        return numpy_helper.to_array(a["value"])
    if op == "ConstantOfShape":
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return np.full([int(d) for d in ins[0]], v.reshape(-1)[0], dtype=v.dtype)
    if op == "Concat":
        return np.concatenate(ins, axis=a["axis"])
    if op == "Reshape":
        shape = [int(d) for d in ins[1]]
        shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return ins[0].reshape(shape)
    if op == "Transpose":
        return np.transpose(ins[0], a.get("perm"))
    if op == "Slice":
        x, starts, ends = ins[0], ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        sl = [slice(None)] * x.ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(st), int(en), int(sp))
        return x[tuple(sl)]
    if op == "Cast":
        return ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])
    if op in ("Add", "Sub", "Mul", "Div"):
        f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        r = f(ins[0], ins[1])
        return r.astype(ins[0].dtype) if op != "Div" or ins[0].dtype.kind == "f" else ins[0] // ins[1]
    if op == "Neg":
        return -ins[0]
    if op == "Gather":
        return np.take(ins[0], ins[1], axis=a.get("axis", 0))
    if op == "Unsqueeze":
        axes = a["axes"] if opset < 13 else [int(v) for v in ins[1]]
        r = ins[0]
        for ax in sorted(v % (r.ndim + len(axes)) for v in axes):
            r = np.expand_dims(r, ax)
        return r
    if op == "Squeeze":
        axes = a.get("axes") if opset < 13 else (None if len(ins) < 2 else [int(v) for v in ins[1]])
        return np.squeeze(ins[0], axis=tuple(axes) if axes is not None else None)
    if op == "Size":
        return np.array(ins[0].size, dtype=np.int64)
    if op == "Shape":
        return np.array(ins[0].shape, dtype=np.int64)
    return None


def fold_constants(model):
    """Replace every node whose inputs are all constants (initializers or Constant outputs) by an
    initializer, then drop dead nodes: what onnx-simplifier would do, for the shape arithmetic that
    PyTorch 1.13 leaves around Pad (ConstantOfShape/Slice/Transpose/Cast...).  Returns the list of
    op types that were folded away."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    const = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    produced = {}
    keep = []
    folded = []
    for node in model.graph.node:
        ins = [const.get(n) if n else None for n in node.input]
        all_const = all(v is not None for n, v in zip(node.input, ins) if n)
        val = None
        if all_const and len(node.output) == 1 and node.op_type not in SUPPORTED_OPS - {"Concat", "Reshape", "Add", "Constant"}:
            val = _np_const_op(node, ins, opset)
        if val is not None:
            const[node.output[0]] = np.asarray(val)
            produced[node.output[0]] = node
            if node.op_type != "Constant":
                folded.append(node.op_type)
        else:
            keep.append(node)
    if not folded:
        return []
    # initializers (or kept Constant nodes) for the folded values still consumed
    used = {n for node in keep for n in node.input} | {o.name for o in model.graph.output}
    inits = {i.name for i in model.graph.initializer}
    new_nodes = []
    for node in model.graph.node:
        if node in keep:
            new_nodes.append(node)
        elif node.output[0] in used and node.output[0] not in inits:
            if node.op_type == "Constant":
                new_nodes.append(node)
            else:
                model.graph.initializer.append(numpy_helper.from_array(const[node.output[0]], node.output[0]))
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    # drop now-unused initializers
    used = {n for node in model.graph.node for n in node.input} | {o.name for o in model.graph.output}
    live = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(live)
    return sorted(set(folded))


# ============================================================================ helpers

def randomize_bn(module, gen):
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
                m.weight.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.3)


def conv_bn(cin, cout, k=3, stride=1, padding=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


def export_bytes(model, shape, opset):
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        model, torch.zeros((1,) + tuple(shape)), buf,
        opset_version=opset,
        input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
    )
    return onnx.load_from_string(buf.getvalue())


def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString())


def op_list(model):
    ops = []
    for n in model.graph.node:
        if n.op_type not in ops:
            ops.append(n.op_type)
    return ops


# ============================================================================ PyTorch models

class ConvBnRelu(nn.Module):
    """conv(bias=False)+BN+ReLU twice (folded into Conv by the exporter), GAP, Linear."""
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(conv_bn(1, 8), nn.MaxPool2d(2), conv_bn(8, 16))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.gap(self.f(x)), 1))


class PadStride2(nn.Module):
    """ZeroPad2d((left 1, right 2, top 0, bottom 1)) -> Pad, then a stride-2 conv; a second conv
    with stride (2,1) and unequal padding (1,0)."""
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 0, 1))
        self.conv1 = nn.Conv2d(1, 6, 3, stride=2)
        self.conv2 = nn.Conv2d(6, 8, (3, 2), stride=(2, 1), padding=(1, 0))

    def forward(self, x):
        x = F.relu(self.conv1(self.pad(x)))      # 1x29x31 -> 6x14x15
        x = F.relu(self.conv2(x))                # 8x7x14
        return torch.flatten(x, 1)


class DepthwiseGrouped(nn.Module):
    """pointwise conv, depthwise 3x3 (groups=C), grouped 3x3 conv (groups=2), 3x32x32 input."""
    def __init__(self):
        super().__init__()
        self.pw = conv_bn(3, 8, k=1, padding=0)
        self.dw = conv_bn(8, 8, k=3, stride=2, padding=1, groups=8)
        self.gc = nn.Conv2d(8, 12, 3, padding=1, groups=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.gc(self.dw(self.pw(x))))
        return self.fc(torch.flatten(self.gap(x), 1))


class Dilated(nn.Module):
    """dilation 2 (padding 2) and dilation (2,3) with stride 2."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=2, dilation=2)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=(1, 2), dilation=(2, 3))

    def forward(self, x):
        return self.c2(F.relu(self.c1(x)))


class MaxPoolCeil(nn.Module):
    """MaxPool k3 s2 p1 ceil_mode=True (14 -> 8, floor would give 7), and a k2 s2 ceil pool on an
    odd size (7 -> 4)."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)           # 28 -> 14
        self.p1 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)  # 14 -> 8
        self.c2 = nn.Conv2d(4, 4, 2)                                 # 8 -> 7
        self.p2 = nn.MaxPool2d(2, stride=2, ceil_mode=True)          # 7 -> 4

    def forward(self, x):
        # conv outputs can be negative: the pools see negative values next to the padding
        x = self.p1(self.c1(x))
        return self.p2(self.c2(x))


class RawPadView(nn.Module):
    """nn.ZeroPad2d and F.pad, a conv, then x.view(x.size(0), -1) into a Linear: left unfolded."""
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 0, 1))
        self.c = nn.LazyConv2d(4, 3)
        self.fc = nn.LazyLinear(10)

    def forward(self, x):
        x = F.relu(self.c(self.pad(x)))
        x = F.pad(x, (0, 1, 1, 0), value=0.5)
        return self.fc(x.view(x.size(0), -1))


class AvgPoolPad(nn.Module):
    """AveragePool with padding, count_include_pad True and False; the output is the 6x7x7 map."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.a1 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)    # 28 -> 14
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.a2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)   # 14 -> 7
        self.c3 = nn.Conv2d(4, 6, 1)
        with torch.no_grad():       # positive offset, so the zero padding visibly changes the mean
            self.c1.bias.add_(1.0)
            self.c2.bias.add_(1.0)

    def forward(self, x):
        x = self.a1(self.c1(x))
        x = self.a2(self.c2(x))
        return self.c3(x)


class AvgPoolNoPad(nn.Module):
    """F.avg_pool2d without padding, which PyTorch 1.13 exports as a Pad of all-zero pads before the
    AveragePool (the runtime passes such a Pad through without a copy); ReLU before and after."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.c1(x)), 2)      # 28 -> 14
        x = F.relu(F.avg_pool2d(self.c2(x), 2, 2))  # 14 -> 7
        return self.fc(x.flatten(1))


class Relu6Hardtanh(nn.Module):
    """ReLU6 and Hardtanh(-0.5, 1.5), both exported as Clip (min/max as inputs at opset >= 11)."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, stride=2, padding=1)
        self.act1 = nn.ReLU6()
        self.c2 = nn.Conv2d(6, 6, 3, stride=2, padding=1)
        self.act2 = nn.Hardtanh(-0.5, 1.5)
        self.fc = nn.Linear(6 * 7 * 7, 10)

    def forward(self, x):
        x = self.act1(self.c1(x))
        x = self.act2(self.c2(x))
        return self.fc(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        s = x if self.short is None else self.short(x)
        return F.relu(y + s)


class ResidualBlocks(nn.Module):
    """3x32x32: stem, identity block, block with 1x1 stride-2 projection shortcut, GAP, fc."""
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.block1 = BasicBlock(8, 8, 1)
        self.block2 = BasicBlock(8, 16, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class InceptionConcat(nn.Module):
    """3x32x32: three branches (1x1; 1x1->3x3; maxpool->1x1) concatenated on channels."""
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8, stride=2)                       # 16x16
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 2, 1))
        self.post = conv_bn(12, 8, stride=2)                      # 8x8
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x)], dim=1))
        x = self.post(x)
        return self.fc(torch.flatten(self.gap(x), 1))


class LinearNoBiasMatMul(nn.Module):
    """Linear(bias=False) -> MatMul; torch.matmul with a parameter -> MatMul; + bias -> Add."""
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 32, bias=False)
        self.w2 = nn.Parameter(torch.randn(32, 16) * 0.2)
        self.b2 = nn.Parameter(torch.randn(16) * 0.1)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(torch.matmul(x, self.w2) + self.b2)
        return self.fc3(x)


class FlattenAfterConv(nn.Module):
    """Wanted: x.view(x.size(0), -1).  With a dynamic batch axis that exports
    Shape/Gather/Unsqueeze/Concat/Reshape, so this model uses torch.flatten(x, 1) (Flatten)."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 5, stride=3)     # 4x8x8
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.c(x)), 1))


class ReshapeConst(nn.Module):
    """x.reshape(-1, C*H*W) with a constant shape -> Reshape with shape [-1, 256]."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 5, stride=3)     # 4x8x8
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc(F.relu(self.c(x)).reshape(-1, 4 * 8 * 8))


class DropoutSoftmax(nn.Module):
    """Dropout (eval mode: removed by the exporter) and Softmax over the classes."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.drop2d = nn.Dropout2d(0.3)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.drop2d(F.relu(self.c(x)))
        x = self.drop(torch.flatten(self.gap(x), 1))
        return torch.softmax(self.fc(x), dim=1)


class ConvLinearBn1d(nn.Module):
    """3x32x32: conv features, then Linear -> BatchNorm1d -> ReLU -> Linear."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, stride=2, padding=1)   # 16x16
        self.p = nn.MaxPool2d(2)                           # 8x8
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.bn = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.flatten(self.p(F.relu(self.c(x))), 1)
        return self.fc2(F.relu(self.bn(self.fc1(x))))


class MlpBn1d(nn.Module):
    """MLP with 1-D BN after each hidden Linear, Dropout, Softmax."""
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 48), nn.BatchNorm1d(48), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(48, 24), nn.BatchNorm1d(24), nn.ReLU(),
            nn.Linear(24, 10), nn.Softmax(dim=1),
        )

    def forward(self, x):
        return self.net(x)


class StandaloneBn(nn.Module):
    """BatchNorm2d that cannot be folded into a preceding conv: on the input, and after
    ReLU / after a residual Add, so the graph keeps BatchNormalization nodes on 4-D tensors."""
    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(1)
        self.c1 = nn.Conv2d(1, 6, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = self.bn1(F.relu(self.c1(self.bn0(x))))
        x = self.bn2(x + self.c2(x))
        return self.fc(torch.flatten(self.gap(F.relu(x)), 1))


class Mixed(nn.Module):
    """Pad, ReLU6, BN (standalone and folded), maxpool, GAP, Linear, Softmax: exported at
    opsets 11, 13 and 17 to exercise version differences (Softmax axis semantics before 13,
    BatchNormalization 9/14/15, Pad/Clip inputs)."""
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 1, 0))
        self.c1 = nn.Conv2d(1, 8, 3, stride=2, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()
        self.b2 = nn.BatchNorm2d(8)
        self.p = nn.MaxPool2d(2, ceil_mode=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.act(self.b1(self.c1(self.pad(x))))
        x = self.p(self.b2(x))
        return torch.softmax(self.fc(torch.flatten(self.gap(x), 1)), dim=1)


# name -> (constructor, input shape (C,H,W), opset)
TORCH_MODELS = {
    "conv_bn_relu": (ConvBnRelu, (1, 28, 28), 13),
    "pad_stride2": (PadStride2, (1, 28, 28), 13),
    "depthwise_grouped": (DepthwiseGrouped, (3, 32, 32), 13),
    "dilated_conv": (Dilated, (1, 28, 28), 13),
    "maxpool_ceil": (MaxPoolCeil, (1, 28, 28), 13),
    "avgpool_pad": (AvgPoolPad, (1, 28, 28), 13),
    "avgpool_nopad": (AvgPoolNoPad, (1, 28, 28), 13),
    "relu6_hardtanh": (Relu6Hardtanh, (1, 28, 28), 13),
    "residual_blocks": (ResidualBlocks, (3, 32, 32), 13),
    "inception_concat": (InceptionConcat, (3, 32, 32), 13),
    "linear_nobias_matmul": (LinearNoBiasMatMul, (1, 28, 28), 13),
    "flatten_after_conv": (FlattenAfterConv, (1, 28, 28), 13),
    "reshape_const": (ReshapeConst, (1, 28, 28), 13),
    "dropout_softmax": (DropoutSoftmax, (1, 28, 28), 13),
    "conv_linear_bn1d": (ConvLinearBn1d, (3, 32, 32), 13),
    "mlp_bn1d": (MlpBn1d, (1, 28, 28), 13),
    "standalone_bn": (StandaloneBn, (1, 28, 28), 13),
    "mixed_opset11": (Mixed, (1, 28, 28), 11),
    "mixed_opset13": (Mixed, (1, 28, 28), 13),
    "mixed_opset17": (Mixed, (1, 28, 28), 17),
    # Exported as PyTorch writes them, without folding the constant subgraphs here: the importer must
    # fold the pad arithmetic (ConstantOfShape, Slice, Transpose, Cast...) and x.view(x.size(0), -1)
    # (Shape, Gather, Unsqueeze, Concat) itself.
    "raw_pad_view_opset11": (RawPadView, (1, 28, 28), 11),
    "raw_pad_view_opset13": (RawPadView, (1, 28, 28), 13),
    "raw_pad_view_opset17": (RawPadView, (3, 20, 24), 17),
}
RAW_EXPORTS = {"raw_pad_view_opset11", "raw_pad_view_opset13", "raw_pad_view_opset17"}


# ============================================================================ probes

class ProbeView(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 5, stride=3)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(self.c(x))
        return self.fc(x.view(x.size(0), -1))


class ProbeMean(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.c(x).mean((2, 3))


class ProbeReshapeBatch(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1)


PROBES = {
    "x.view(x.size(0), -1)": ProbeView,
    "x.reshape(x.shape[0], -1)": ProbeReshapeBatch,
    "x.mean((2, 3))": ProbeMean,
}


# ============================================================================ hand-built models

def _init(name, array):
    return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)


def handmade_clip_attr_opset7(rng):
    """Opset 7: Conv -> Clip(min, max as ATTRIBUTES) -> Dropout -> Identity -> Flatten -> Gemm."""
    w = (rng.standard_normal((4, 1, 3, 3)) * 0.5).astype(np.float32)
    b = (rng.standard_normal(4) * 0.1).astype(np.float32)
    fw = (rng.standard_normal((5, 4 * 7 * 7)) * 0.1).astype(np.float32)
    fb = (rng.standard_normal(5) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[4, 4]),
        helper.make_node("Clip", ["c"], ["cl"], min=-0.25, max=0.75),
        helper.make_node("Dropout", ["cl"], ["dr"], ratio=0.5),
        helper.make_node("Identity", ["dr"], ["id"]),
        helper.make_node("Flatten", ["id"], ["fl"], axis=1),
        helper.make_node("Gemm", ["fl", "fw", "fb"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "clip_attr_opset7",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 5])],
        [_init("w", w), _init("b", b), _init("fw", fw), _init("fb", fb)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)],
                              producer_name="make_test_models.py")

    def torch_ref(x):
        y = F.conv2d(x, torch.from_numpy(w), torch.from_numpy(b), stride=4, padding=1)
        y = torch.clamp(y, -0.25, 0.75)
        return torch.flatten(y, 1) @ torch.from_numpy(fw).t() + torch.from_numpy(fb)
    return model, (1, 28, 28), torch_ref


def handmade_constant_nodes(rng):
    """Opset 13: weights and the reshape shape given by Constant nodes (not initializers),
    Reshape to [0, -1] (0 = copy the batch dim), MatMul + Add, Dropout with one output,
    Identity, Gemm with alpha/beta and transB=0."""
    w = (rng.standard_normal((2, 1, 5, 5)) * 0.3).astype(np.float32)
    m = (rng.standard_normal((2 * 6 * 6, 12)) * 0.1).astype(np.float32)
    mb = (rng.standard_normal(12) * 0.1).astype(np.float32)
    g = (rng.standard_normal((12, 7)) * 0.3).astype(np.float32)
    gb = (rng.standard_normal(7) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=_init("w_value", w)),
        helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[5, 5], strides=[4, 4],
                         pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Constant", [], ["shape"],
                         value=numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape_value")),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("Constant", [], ["m"], value=_init("m_value", m)),
        helper.make_node("MatMul", ["flat", "m"], ["mm"]),
        helper.make_node("Add", ["mm", "mb"], ["a"]),
        helper.make_node("Dropout", ["a"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Gemm", ["i", "g", "gb"], ["output"], alpha=0.5, beta=2.0),
    ]
    graph = helper.make_graph(
        nodes, "constant_nodes",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 7])],
        [_init("mb", mb), _init("g", g), _init("gb", gb)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="make_test_models.py")

    def torch_ref(x):
        y = F.relu(F.conv2d(x, torch.from_numpy(w), stride=4))
        y = torch.flatten(y, 1) @ torch.from_numpy(m) + torch.from_numpy(mb)
        return 0.5 * (y @ torch.from_numpy(g)) + 2.0 * torch.from_numpy(gb)
    return model, (1, 28, 28), torch_ref


def handmade_pool_attrs(rng):
    """Opset 13, attributes PyTorch never exports (TensorFlow/Keras exporters do): asymmetric pads
    on Conv, MaxPool and AveragePool, AveragePool count_include_pad=1 with pads (PyTorch exports
    Pad + AveragePool instead) and count_include_pad=0 with asymmetric pads."""
    w = (rng.standard_normal((3, 1, 3, 3)) * 0.5).astype(np.float32)
    b = (rng.standard_normal(3) * 0.1 + 1.0).astype(np.float32)
    nodes = [
        # pads are [top, left, bottom, right]
        helper.make_node("Conv", ["input", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[0, 1, 1, 2]),
        helper.make_node("AveragePool", ["c"], ["a1"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 0, 2, 1], count_include_pad=1),        # 3x14x14
        helper.make_node("MaxPool", ["a1"], ["m"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 1, 1, 0]),
        helper.make_node("AveragePool", ["m"], ["output"], kernel_shape=[2, 3], strides=[2, 2],
                         pads=[0, 0, 1, 1], count_include_pad=0),
    ]
    graph = helper.make_graph(
        nodes, "pool_attrs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, 7, 7])],
        [_init("w", w), _init("b", b)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="make_test_models.py")

    def torch_ref(x):
        # F.pad takes (left, right, top, bottom)
        y = F.conv2d(F.pad(x, (1, 2, 0, 1)), torch.from_numpy(w), torch.from_numpy(b))   # 3x27x29
        y = F.avg_pool2d(F.pad(y, (0, 1, 1, 2)), 3, 2)                                     # 3x14x14
        y = F.max_pool2d(F.pad(y, (1, 0, 0, 1), value=-math.inf), 2, 1)                  # 3x14x14
        ones = torch.ones((1, 1) + tuple(y.shape[2:]))
        s = F.avg_pool2d(F.pad(y, (0, 1, 0, 1)), (2, 3), 2)
        n = F.avg_pool2d(F.pad(ones, (0, 1, 0, 1)), (2, 3), 2)
        return s / n                                                                       # 3x7x7
    return model, (1, 28, 28), torch_ref


HAND_MODELS = {
    "pool_attrs": handmade_pool_attrs,
    "clip_attr_opset7": handmade_clip_attr_opset7,
    "constant_nodes": handmade_constant_nodes,
}


# ============================================================================ main

def write_model(name, model, x, y):
    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    write_tensor(os.path.join(d, "test_data_set_0", "input_0.pb"), x, model.graph.input[0].name)
    write_tensor(os.path.join(d, "test_data_set_0", "output_0.pb"), y, model.graph.output[0].name)
    return os.path.getsize(os.path.join(d, "model.onnx"))


def check_and_report(name, model, x, y, opset):
    onnx.checker.check_model(model, full_check=True)   # includes strict shape inference
    ops = op_list(model)
    bad = [o for o in ops if o not in SUPPORTED_OPS]
    if bad and name not in RAW_EXPORTS:
        raise SystemExit(f"{name}: unsupported ops {bad} (all ops: {ops})")
    if bad:  # left for the importer to fold; the C++ conformance test compares with PyTorch's output
        return ops, 0.0
    ref = run_reference(model, {"input": x})[0]
    if ref.shape != y.shape:
        raise SystemExit(f"{name}: reference output shape {ref.shape} != torch {y.shape}")
    diff = float(np.abs(ref - y).max())
    scale = float(np.abs(y).max()) or 1.0
    if diff > 1e-4 * max(1.0, scale):
        raise SystemExit(f"{name}: reference evaluator differs from PyTorch by {diff}")
    return ops, diff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--probe", action="store_true", help="also show the ops of known-unsupported constructs")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))

    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}")

    if args.probe:
        print("probes (not written):")
        for label, cls in PROBES.items():
            torch.manual_seed(0)
            m = export_bytes(cls(), (1, 28, 28), 13)
            print(f"  {label:28s} -> {op_list(m)}")

    rows = []
    for i, (name, (cls, shape, opset)) in enumerate(TORCH_MODELS.items()):
        if only and name not in only:
            continue
        # a per-model seed, so that adding a model does not change the others
        seed = SEED + sum(map(ord, name))
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = cls()
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(shape)))  # materialise lazy modules
        randomize_bn(model, gen)
        model.eval()
        x = torch.randn((BATCH,) + tuple(shape), generator=gen)
        with torch.no_grad():
            y = model(x).numpy().astype(np.float32)
        onnx_model = export_bytes(model, shape, opset)
        folded = [] if name in RAW_EXPORTS else fold_constants(onnx_model)
        if folded:
            print(f"  {name}: folded constant subgraph ops {folded}")
        ops, diff = check_and_report(name, onnx_model, x.numpy(), y, opset)
        size = write_model(name, onnx_model, x.numpy(), y)
        if size > MAX_BYTES:
            raise SystemExit(f"{name}: model.onnx is {size} bytes (> {MAX_BYTES})")
        rows.append((name, opset, shape, y.shape, size, diff, ops))

    for name, fn in HAND_MODELS.items():
        if only and name not in only:
            continue
        rng = np.random.default_rng(SEED + sum(map(ord, name)))
        model, shape, torch_ref = fn(rng)
        opset = model.opset_import[0].version
        x = rng.standard_normal((BATCH,) + tuple(shape)).astype(np.float32)
        with torch.no_grad():
            y = torch_ref(torch.from_numpy(x)).numpy().astype(np.float32)
        ops, diff = check_and_report(name, model, x, y, opset)
        size = write_model(name, model, x, y)
        rows.append((name, opset, shape, y.shape, size, diff, ops))

    print(f"wrote {len(rows)} models to {os.path.relpath(OUT_DIR, ROOT)}/")
    for name, opset, shape, oshape, size, diff, ops in rows:
        print(f"  {name:22s} opset {opset:2d} in {str(tuple(shape)):12s} out {str(tuple(oshape[1:])):12s} "
              f"{size:7d} B  ref diff {diff:.1e}  {' '.join(ops)}")


if __name__ == "__main__":
    main()
