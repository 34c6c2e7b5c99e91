#!/usr/bin/python3
"""Writes the bundled default model of the quick start (tools/models/default.onnx) and a sample
input with PyTorch's output for it (default_input.npy, default_output.npy).

The model is a small residual CNN for 3x32x32 images (CIFAR-sized): conv-BN-ReLU stem, a strided
conv, one residual block, global average pooling and a 10-way linear classifier, with random
weights (fixed seed) and a symbolic batch dimension "N", so kiln can compile it for several
batch sizes. Regenerate with: /usr/bin/python3 tools/models/make_default.py
"""
import os

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(32), nn.ReLU())
        self.block = Block(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block(self.down(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def main():
    torch.manual_seed(20261121)
    model = SmallResNet().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    x = torch.randn(1, 3, 32, 32)
    torch.onnx.export(model, x, os.path.join(HERE, "default.onnx"), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      opset_version=13)
    with torch.no_grad():
        y = model(x)
    np.save(os.path.join(HERE, "default_input.npy"), x.numpy())
    np.save(os.path.join(HERE, "default_output.npy"), y.numpy())


if __name__ == "__main__":
    main()
