"""NVlabs/SPADE's generator written down independently of ganas: its state-dict layout and a functional
forward pass, both from the documented layer order (models/networks/generator.py SPADEGenerator,
architecture.py SPADEResnetBlock, normalization.py SPADE with norm_G 'spectralspadesyncbatch3x3').

Nothing here imports ganas's SPADE code, so a ganas generator that loads :func:`nvlabs_state_dict`
and equals :func:`nvlabs_forward` is checked against the reference, not against itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

UPS = {"normal": 5, "more": 6, "most": 7}


def _blocks(ngf: int, depth: str) -> list[tuple[str, int, int]]:
    nf = ngf
    blocks = [("head_0", 16 * nf, 16 * nf), ("G_middle_0", 16 * nf, 16 * nf), ("G_middle_1", 16 * nf, 16 * nf),
              ("up_0", 16 * nf, 8 * nf), ("up_1", 8 * nf, 4 * nf), ("up_2", 4 * nf, 2 * nf), ("up_3", 2 * nf, nf)]
    if depth == "most":
        blocks.append(("up_4", nf, nf // 2))
    return blocks


def nvlabs_state_dict(semantic_nc: int, ngf: int, depth: str = "normal", nhidden: int = 128,
                      seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under NVlabs's keys, in the order its modules register them; BN statistics away from
    (0, 1) and spectral-norm u, v vectors as a trained checkpoint holds them."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def rand(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    def conv(name, cin, cout, k, bias=True, spectral=False):
        if spectral:  # torch.nn.utils.spectral_norm: 'weight' becomes the parameter 'weight_orig' + buffers u, v
            if bias:
                state[f"{name}.bias"] = rand(cout)
            state[f"{name}.weight_orig"] = rand(cout, cin, k, k)
            state[f"{name}.weight_u"] = F.normalize(rand(cout), dim=0)
            state[f"{name}.weight_v"] = F.normalize(rand(cin * k * k), dim=0)
        else:
            state[f"{name}.weight"] = rand(cout, cin, k, k)
            if bias:
                state[f"{name}.bias"] = rand(cout)

    def spade(name, norm_nc):
        state[f"{name}.param_free_norm.running_mean"] = rand(norm_nc)
        state[f"{name}.param_free_norm.running_var"] = 0.5 + torch.rand(norm_nc, generator=g)
        state[f"{name}.param_free_norm.num_batches_tracked"] = torch.tensor(1000)
        conv(f"{name}.mlp_shared.0", semantic_nc, nhidden, 3)
        conv(f"{name}.mlp_gamma", nhidden, norm_nc, 3)
        conv(f"{name}.mlp_beta", nhidden, norm_nc, 3)

    conv("fc", semantic_nc, 16 * ngf, 3)
    for name, fin, fout in _blocks(ngf, depth):
        middle = min(fin, fout)
        conv(f"{name}.conv_0", fin, middle, 3, spectral=True)
        conv(f"{name}.conv_1", middle, fout, 3, spectral=True)
        if fin != fout:
            conv(f"{name}.conv_s", fin, fout, 1, bias=False, spectral=True)
        spade(f"{name}.norm_0", fin)
        spade(f"{name}.norm_1", middle)
        if fin != fout:
            spade(f"{name}.norm_s", fin)
    conv("conv_img", ngf // 2 if depth == "most" else ngf, 3, 3)
    return state


def _weight(state, name):
    if f"{name}.weight" in state:
        return state[f"{name}.weight"]
    w, u, v = state[f"{name}.weight_orig"], state[f"{name}.weight_u"], state[f"{name}.weight_v"]
    return w / torch.dot(u, w.reshape(w.shape[0], -1) @ v)


def _conv(state, name, x):
    w = _weight(state, name)
    return F.conv2d(x, w, state.get(f"{name}.bias"), padding=w.shape[-1] // 2)


def _spade(state, name, x, seg):
    mean, var = state[f"{name}.param_free_norm.running_mean"], state[f"{name}.param_free_norm.running_var"]
    normalized = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)
    seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
    actv = F.relu(_conv(state, f"{name}.mlp_shared.0", seg))
    return normalized * (1 + _conv(state, f"{name}.mlp_gamma", actv)) + _conv(state, f"{name}.mlp_beta", actv)


def _block(state, name, x, seg):
    if f"{name}.conv_s.weight_orig" in state:
        x_s = _conv(state, f"{name}.conv_s", _spade(state, f"{name}.norm_s", x, seg))
    else:
        x_s = x
    dx = _conv(state, f"{name}.conv_0", F.leaky_relu(_spade(state, f"{name}.norm_0", x, seg), 0.2))
    dx = _conv(state, f"{name}.conv_1", F.leaky_relu(_spade(state, f"{name}.norm_1", dx, seg), 0.2))
    return x_s + dx


@torch.no_grad()
def nvlabs_forward(state: dict[str, torch.Tensor], seg: torch.Tensor, depth: str = "normal") -> torch.Tensor:
    """SPADEGenerator.forward (eval mode, no VAE): crop size and aspect ratio taken from the input."""
    n = UPS[depth]
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731  nn.Upsample(scale_factor=2)
    x = _conv(state, "fc", F.interpolate(seg, size=(seg.shape[2] >> n, seg.shape[3] >> n)))
    x = _block(state, "head_0", x, seg)
    x = _block(state, "G_middle_0", up(x), seg)
    if depth in ("more", "most"):
        x = up(x)
    x = _block(state, "G_middle_1", x, seg)
    for i in range(5 if depth == "most" else 4):
        x = _block(state, f"up_{i}", up(x), seg)
    return torch.tanh(_conv(state, "conv_img", F.leaky_relu(x, 0.2)))


def one_hot_labels(labels: int, height: int, width: int, instance: bool = True, seed: int = 0) -> torch.Tensor:
    """A one-hot label map of random blocks (+ a 0/1 instance edge channel), as SPADE's preprocess_input."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, labels, (1, 1, height // 8, width // 8), generator=g)
    index = F.interpolate(coarse.float(), size=(height, width), mode="nearest").long()
    seg = torch.zeros(1, labels, height, width).scatter_(1, index, 1.0)
    if instance:
        edges = (torch.rand(1, 1, height, width, generator=g) > 0.9).float()
        seg = torch.cat([seg, edges], 1)
    return seg
