"""Generators of public CycleGAN / pix2pix re-implementations, written for the tests from their documented
layer order (the module names, registration order and layer options each repository's models file shows),
never from ganas's modules. Each is a small independent ``nn.Module`` whose state dict has that
implementation's keys, and whose forward pass is that implementation's.

- aitorzip/PyTorch-CycleGAN, models.py ``Generator``: ``model`` Sequential, ``ResidualBlock.conv_block``,
  InstanceNorm (not affine), convs with their default bias; width 64.
- Lornatang/CycleGAN-PyTorch, cyclegan_pytorch/models.py ``Generator``: the same layers in a Sequential named
  ``main``, residual blocks' Sequential named ``res``; 9 blocks, width 64.
- znxlwm/pytorch-CycleGAN, network.py ``generator(input_nc, output_nc, ngf=32, nb=6)``: named attributes
  (``conv1``, ``conv1_norm``, ..., ``resnet_blocks`` of ``resnet_block`` with ``conv1``/``conv2``,
  ``deconv1``..``deconv3``), reflection padding done in ``forward``.
- arnab39/cycleGAN-PyTorch, arch/generators.py + arch/ops.py ``ResnetGenerator`` (``res_model`` of
  ``conv_norm_relu`` / ``dconv_norm_relu`` Sequentials, ``ResidualBlock.res_block``, dropout by default,
  ``use_bias = norm is InstanceNorm``) and ``UnetGenerator`` (pix2pix's recursive blocks under ``unet_model``).
- issue 10's report: a ResNet generator with an affine InstanceNorm after every conv and residual blocks
  stored as ``model.N.block.K`` (eriklindernoren/PyTorch-GAN's block name, transposed-conv upsampling).
- eriklindernoren/PyTorch-GAN, implementations/cyclegan/models.py ``GeneratorResNet``: upsamples with
  ``nn.Upsample`` + a 3x3 conv instead of transposed convs: another family, which ganas must refuse.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def instance(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels)  # PyTorch's default: affine=False, no running statistics


def instance_affine(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class _Residual(nn.Module):
    """x + body(x); the body's attribute name is the implementation's."""

    def __init__(self, name: str, layers: list[nn.Module]):
        super().__init__()
        self.body_name = name
        setattr(self, name, nn.Sequential(*layers))

    def forward(self, x):
        return x + getattr(self, self.body_name)(x)


def _block_layers(dim: int, norm, bias: bool = True, relu=nn.ReLU) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), relu(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]


def _sequential_resnet(ngf: int, blocks: int, block_name: str, norm, channels=(3, 3)) -> list[nn.Module]:
    """pad 3, conv 7x7, norm, relu; 2 x (conv 3x3 s2, norm, relu); blocks; 2 x (convT 3x3 s2, norm, relu);
    pad 3, conv 7x7, tanh: the layer list aitorzip, Lornatang and issue 10's layout all build."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels[0], ngf, 7), norm(ngf), nn.ReLU(inplace=True)]
    for c in (ngf, 2 * ngf):
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), norm(2 * c), nn.ReLU(inplace=True)]
    layers += [_Residual(block_name, _block_layers(4 * ngf, norm)) for _ in range(blocks)]
    for c in (4 * ngf, 2 * ngf):
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), norm(c // 2),
                   nn.ReLU(inplace=True)]
    return layers + [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels[1], 7), nn.Tanh()]


class AitorzipGenerator(nn.Module):
    """aitorzip/PyTorch-CycleGAN ``Generator(input_nc, output_nc, n_residual_blocks=9)``."""

    def __init__(self, input_nc=3, output_nc=3, n_residual_blocks=9):
        super().__init__()
        self.model = nn.Sequential(*_sequential_resnet(64, n_residual_blocks, "conv_block", instance,
                                                       (input_nc, output_nc)))

    def forward(self, x):
        return self.model(x)


class LornatangGenerator(nn.Module):
    """Lornatang/CycleGAN-PyTorch ``Generator()``: 3 -> 3 channels, width 64, 9 blocks."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(*_sequential_resnet(64, 9, "res", instance))

    def forward(self, x):
        return self.main(x)


class Issue10Generator(nn.Module):
    """issue 10's teacher: affine InstanceNorm after every conv, blocks as ``model.N.block.K``."""

    def __init__(self, ngf=64, blocks=9):
        super().__init__()
        self.model = nn.Sequential(*_sequential_resnet(ngf, blocks, "block", instance_affine))

    def forward(self, x):
        return self.model(x)


class EriklindernorenGenerator(nn.Module):
    """eriklindernoren/PyTorch-GAN ``GeneratorResNet``: Upsample + conv 3x3 where the others transpose."""

    def __init__(self, blocks=9):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), instance(64), nn.ReLU(inplace=True)]
        for c in (64, 128):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), instance(2 * c), nn.ReLU(inplace=True)]
        layers += [_Residual("block", _block_layers(256, instance)) for _ in range(blocks)]
        for c in (256, 128):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(c, c // 2, 3, stride=1, padding=1), instance(c // 2),
                       nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class _ZnxlwmBlock(nn.Module):
    """znxlwm's ``resnet_block(channel, 3, 1, 1)``: reflection padding in forward, convs without padding."""

    def __init__(self, channel: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channel, channel, 3, 1, 0)
        self.conv1_norm = instance(channel)
        self.conv2 = nn.Conv2d(channel, channel, 3, 1, 0)
        self.conv2_norm = instance(channel)

    def forward(self, x):
        h = F.relu(self.conv1_norm(self.conv1(F.pad(x, (1, 1, 1, 1), "reflect"))))
        return x + self.conv2_norm(self.conv2(F.pad(h, (1, 1, 1, 1), "reflect")))


class ZnxlwmGenerator(nn.Module):
    """znxlwm/pytorch-CycleGAN ``generator(input_nc, output_nc, ngf=32, nb=6)``."""

    def __init__(self, input_nc=3, output_nc=3, ngf=32, nb=6):
        super().__init__()
        self.conv1, self.conv1_norm = nn.Conv2d(input_nc, ngf, 7, 1, 0), instance(ngf)
        self.conv2, self.conv2_norm = nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), instance(2 * ngf)
        self.conv3, self.conv3_norm = nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1), instance(4 * ngf)
        self.resnet_blocks = nn.Sequential(*[_ZnxlwmBlock(4 * ngf) for _ in range(nb)])
        self.deconv1, self.deconv1_norm = nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, 1), instance(2 * ngf)
        self.deconv2, self.deconv2_norm = nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, 1), instance(ngf)
        self.deconv3 = nn.Conv2d(ngf, output_nc, 7, 1, 0)

    def forward(self, x):
        x = F.relu(self.conv1_norm(self.conv1(F.pad(x, (3, 3, 3, 3), "reflect"))))
        x = F.relu(self.conv2_norm(self.conv2(x)))
        x = F.relu(self.conv3_norm(self.conv3(x)))
        x = self.resnet_blocks(x)
        x = F.relu(self.deconv1_norm(self.deconv1(x)))
        x = F.relu(self.deconv2_norm(self.deconv2(x)))
        return torch.tanh(self.deconv3(F.pad(x, (3, 3, 3, 3), "reflect")))


def _arnab39_norm(norm: str):
    """arnab39's get_norm_layer: BatchNorm2d(affine=True) or InstanceNorm2d(affine=False)."""
    return (lambda c: nn.BatchNorm2d(c, affine=True)) if norm == "batch" else instance


def _conv_norm_relu(cin, cout, k, stride=1, padding=0, norm=None, bias=False, transposed=False, output_padding=0):
    conv = (nn.ConvTranspose2d(cin, cout, k, stride, padding, output_padding, bias=bias) if transposed
            else nn.Conv2d(cin, cout, k, stride, padding, bias=bias))
    return nn.Sequential(conv, norm(cout), nn.ReLU(True))


class Arnab39ResnetGenerator(nn.Module):
    """arnab39/cycleGAN-PyTorch ``ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout=True,
    num_blocks=6)``."""

    def __init__(self, ngf=64, norm="batch", use_dropout=True, num_blocks=6):
        super().__init__()
        norm_layer, bias = _arnab39_norm(norm), norm == "instance"
        layers = [nn.ReflectionPad2d(3), _conv_norm_relu(3, ngf, 7, norm=norm_layer, bias=bias),
                  _conv_norm_relu(ngf, 2 * ngf, 3, 2, 1, norm=norm_layer, bias=bias),
                  _conv_norm_relu(2 * ngf, 4 * ngf, 3, 2, 1, norm=norm_layer, bias=bias)]
        for _ in range(num_blocks):
            body = [nn.ReflectionPad2d(1), _conv_norm_relu(4 * ngf, 4 * ngf, 3, norm=norm_layer, bias=bias)]
            body += [nn.Dropout(0.5)] if use_dropout else []
            body += [nn.ReflectionPad2d(1), nn.Conv2d(4 * ngf, 4 * ngf, 3, bias=bias), norm_layer(4 * ngf)]
            layers.append(_Residual("res_block", body))
        layers += [_conv_norm_relu(4 * ngf, 2 * ngf, 3, 2, 1, norm=norm_layer, bias=bias, transposed=True,
                                   output_padding=1),
                   _conv_norm_relu(2 * ngf, ngf, 3, 2, 1, norm=norm_layer, bias=bias, transposed=True,
                                   output_padding=1),
                   nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.res_model = nn.Sequential(*layers)

    def forward(self, x):
        return self.res_model(x)


class _UnetBlock(nn.Module):
    """pix2pix's UnetSkipConnectionBlock as arnab39 writes it: down [lrelu, conv, norm], sub, up [relu, convT,
    norm]; outermost: [conv, sub, relu, convT (bias), tanh]; innermost: [lrelu, conv, relu, convT, norm]."""

    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, norm=None,
                 bias=False):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(input_nc or outer, inner, 4, 2, 1, bias=bias)
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), norm(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=bias), norm(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class Arnab39UnetGenerator(nn.Module):
    """arnab39/cycleGAN-PyTorch ``UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer)``."""

    def __init__(self, num_downs=8, ngf=64, norm="batch"):
        super().__init__()
        norm_layer, bias = _arnab39_norm(norm), norm == "instance"
        block = _UnetBlock(8 * ngf, 8 * ngf, innermost=True, norm=norm_layer, bias=bias)
        for _ in range(num_downs - 5):
            block = _UnetBlock(8 * ngf, 8 * ngf, sub=block, norm=norm_layer, bias=bias)
        for outer in (4 * ngf, 2 * ngf, ngf):
            block = _UnetBlock(outer, 2 * outer, sub=block, norm=norm_layer, bias=bias)
        self.unet_model = _UnetBlock(3, ngf, input_nc=3, sub=block, outermost=True, norm=norm_layer, bias=bias)

    def forward(self, x):
        return self.unet_model(x)


def randomise_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (affine norms too) and plausible running statistics, from ``seed``."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=rng) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=rng) * 0.2)
    return module
