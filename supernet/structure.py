"""Matching a foreign generator state dict to ganas's module tree by the order and shapes of its tensors.

Implementations of a family (ResNet, mobile ResNet, U-Net) name their modules as they like
(``model.10.block.1``, ``main.10.res.1``, ``resnet_blocks.0.conv1``) but register the same layers
in the same order, each holding PyTorch's standard tensors (a conv's ``weight`` and ``bias``, a
norm's ``weight``, ``bias`` and running statistics). So a state dict is read as a sequence of
*layers* (consecutive tensors sharing a module prefix) and compared, layer by layer, with the
layers of ganas generators whose hyper-parameters are read off the tensors (widths and channels
from the first and last convs, depth from their count) and whose norm variant and conv bias are
tried in turn. A layer fits when it holds the same tensor names with the same shapes.

Not visible in tensors, hence assumed: the padding type (reflect, as every implementation tested;
zero when that is what keeps ganas's own module names), dropout (none; a teacher runs in eval mode,
where dropout does nothing) and the activation functions. A layout that matches by shapes but
computes something else (another concatenation order of U-Net skips, say) is not detected here:
the tests compare outputs for the layouts docs/teachers.md lists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from foundation.registry import Registry

from .errors import CheckpointError
from .norms import RUNNING_STATS, get_norm, list_norms
from .registry import create_generator, get_architecture

Shape = tuple[int, ...]
OPTIONAL = "num_batches_tracked"  # absent from checkpoints older than PyTorch 0.4.1; counts nothing used


@dataclass(frozen=True)
class Layer:
    """Consecutive tensors of one module: its prefix and (name, shape) pairs in saved order."""

    prefix: str
    tensors: tuple[tuple[str, Shape], ...]
    module: str = ""  # the module's class, known for ganas's own layers

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def shapes(self) -> dict[str, Shape]:
        return dict(self.tensors)

    @property
    def is_stats_only(self) -> bool:
        """Running statistics without weights: a pre-0.4 InstanceNorm's, which PyTorch no longer uses."""
        return all(name in RUNNING_STATS for name, _ in self.tensors)

    def describe(self, name: str) -> str:
        what = f" (the {name} of a {self.module})" if self.module else ""
        return f"{self.key(name)} {self.shapes()[name]}{what}"


def layers_of(state: Mapping[str, Any], modules: Mapping[str, torch.nn.Module] | None = None) -> list[Layer]:
    """``state``'s tensors grouped into layers, in order; ``modules`` names each layer's class."""
    layers: list[Layer] = []
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        entry = (name, tuple(value.shape))
        if layers and layers[-1].prefix == prefix and name not in layers[-1].shapes():
            layers[-1] = Layer(prefix, layers[-1].tensors + (entry,), layers[-1].module)
        else:
            module = type(modules[prefix]).__name__ if modules and prefix in modules else ""
            layers.append(Layer(prefix, (entry,), module))
    return layers


def conv_weights(layers: Sequence[Layer]) -> list[Shape]:
    """The 4-D weights (convs and transposed convs), in order."""
    return [shape for layer in layers for name, shape in layer.tensors if name == "weight" and len(shape) == 4]


# -- families: how a family's hyper-parameters are read off its tensors ------------------------------------

@dataclass(frozen=True)
class FamilyShape:
    """How to read a family's hyper-parameters off its conv weights, and the hidden ones to try.

    ``infer`` returns the hyper-parameters it reads (ngf, channels, and the depth ``depth`` names when
    the number of convs gives one) and, when it cannot read them all, a sentence saying why; ``hidden``
    lists values of hyper-parameters that leave no tensor behind but move module indices (a ResNet
    block's dropout), tried in turn: the first of those fitting equally well that keeps the most key
    names wins, so a reference checkpoint loads as is.
    """

    arch: str
    depth: str
    infer: Callable[[list[Shape]], tuple[dict, str | None]]
    hidden: tuple[dict, ...] = ({},)
    norm_variants: bool = True  # whether the family takes ganas's norm and conv_bias (tried in turn)
    stats_only_norms: bool = False  # layers of running statistics alone are its own (not a pre-0.4 InstanceNorm's)
    contradiction: Callable[[dict, Mapping[str, Any]], str | None] = lambda inferred, fixed: None
    """What is wrong when a given hyper-parameter contradicts what the tensors say, said in the family's terms."""
    assumed: Callable[[dict, Mapping[str, Any]], tuple[str, ...]] = lambda hparams, fixed: ()
    """Notes for the import report: hyper-parameters the tensors cannot tell, taken as a default."""


_FAMILIES: Registry[FamilyShape] = Registry("generator family with a structural import", CheckpointError,
                                            sort=False, key="arch")
register_family_shape, list_family_shapes, get_family_shape = (_FAMILIES.add, _FAMILIES.names, _FAMILIES.get)


def _ends(convs: list[Shape], out_dim: int) -> dict:
    """ngf and the image channels: the first conv's output and input, the last conv's output."""
    return dict(ngf=convs[0][0], input_nc=convs[0][1], output_nc=convs[-1][out_dim]) if convs else {}


def _resnet(convs_per_block: int) -> Callable[[list[Shape]], tuple[dict, str | None]]:
    """Stem, two down-convs, ``convs_per_block`` per block, two up-convs, the output conv."""
    def infer(convs: list[Shape]) -> tuple[dict, str | None]:
        blocks, rest = divmod(len(convs) - 6, convs_per_block)
        if len(convs) < 6 or rest:
            return _ends(convs, 0), f"{len(convs)} conv weights are not 6 + {convs_per_block} per residual block"
        return {**_ends(convs, 0), "n_blocks": blocks}, None
    return infer


def _unet(convs: list[Shape]) -> tuple[dict, str | None]:
    """A down-conv and a transposed up-conv per level; the outermost up-conv's weight is (in, out, k, k)."""
    if len(convs) % 2 or len(convs) < 10:
        return _ends(convs, 1), f"{len(convs)} conv weights are not two per level of at least 5 levels"
    return {**_ends(convs, 1), "num_downs": len(convs) // 2}, None


# dropout and zero padding (a conv's own padding instead of a pad layer) move a ResNet block's module indices
_RESNET_HIDDEN = tuple({"dropout": d, "padding_type": p} for p in ("reflect", "zero") for d in (0.0, 0.5))

# -- SPADE: NVlabs's layout, read off the 4-D 'weight' tensors (spectral-norm convs keep 'weight_orig' instead)
SPADE_NORMS = {"normal": 18, "most": 21}  # SPADE layers: 3 trunk blocks x 2 + 4 (5) up blocks x 3
SPADE_HIDDEN = tuple({"spectral": sn, "param_free_norm": norm} for sn in (True, False)
                     for norm in ("batch", "instance"))


def _spade(convs_per_norm: int) -> Callable[[list[Shape]], tuple[dict, str | None]]:
    """fc (16 ngf, labels, 3, 3) first, conv_img last; the count of 4-D weights tells 'most' (an up_4 block)
    from the others, with or without spectral norm (block convs then hold weight_orig); 'more' leaves no trace."""
    def infer(convs: list[Shape]) -> tuple[dict, str | None]:
        if not convs or convs[0][0] % 16:
            return {}, "the first conv's output is not 16 x ngf (SPADE's fc)"
        found = {"ngf": convs[0][0] // 16, "input_nc": convs[0][1], "output_nc": convs[-1][0]}
        found["nhidden"] = next((c[0] for c in convs[1:] if c[1] == found["input_nc"]), None)  # first mlp_shared
        for depth, norms in SPADE_NORMS.items():
            if len(convs) in (2 + convs_per_norm * norms, 2 + (convs_per_norm + 1) * norms):
                return {**found, "num_upsampling_layers": depth}, None
        return found, f"{len(convs)} conv weights are not a SPADE generator's"
    return infer


def _spade_contradiction(inferred: dict, fixed: Mapping[str, Any]) -> str | None:
    if "input_nc" in fixed and fixed["input_nc"] != inferred["input_nc"]:
        return (f"the checkpoint's SPADE generator takes {inferred['input_nc']} input channels (labels, + dontcare, "
                f"+ the instance edge map), not {fixed['input_nc']}: give the --label-nc, --contain-dontcare and "
                "--no-instance it was trained with")
    depth = fixed.get("num_upsampling_layers")
    if depth is not None and (depth == "most") != (inferred["num_upsampling_layers"] == "most"):
        return (f"the checkpoint's SPADE generator was trained with num_upsampling_layers "
                f"{'most (it has an up_4 block)' if depth != 'most' else 'normal or more (it has no up_4 block)'}, "
                f"not {depth}")
    if "ngf" in fixed and fixed["ngf"] != inferred["ngf"]:
        return f"the checkpoint's SPADE generator has ngf {inferred['ngf']} (fc outputs 16 x ngf), not {fixed['ngf']}"
    return None


def _spade_assumed(hparams: dict, fixed: Mapping[str, Any]) -> tuple[str, ...]:
    if "num_upsampling_layers" in fixed or hparams["num_upsampling_layers"] == "most":
        return ()
    return ("num_upsampling_layers normal assumed: its tensors are the same for more, which NVlabs's Cityscapes "
            "models use; give 'more' when it was trained so",)


for _family in (FamilyShape("resnet", "n_blocks", _resnet(2), _RESNET_HIDDEN),
                FamilyShape("mobile_resnet", "n_blocks", _resnet(4)),
                FamilyShape("unet", "num_downs", _unet),
                FamilyShape("spade", "num_upsampling_layers", _spade(3), SPADE_HIDDEN, False, True,
                            _spade_contradiction, _spade_assumed),
                FamilyShape("mobile_spade", "num_upsampling_layers", _spade(5), SPADE_HIDDEN, False, True,
                            _spade_contradiction, _spade_assumed)):
    register_family_shape(_family)


# -- candidates: ganas generators a state dict may be --------------------------------------------------------

@dataclass
class Candidate:
    """A ganas generator the state dict is compared with; its layers are built once, on the meta device."""

    arch: str
    hparams: dict
    hidden: frozenset = frozenset()  # names of hyper-parameters that leave no tensor
    _layers: list[Layer] | None = field(default=None, repr=False)

    @property
    def layers(self) -> list[Layer]:
        if self._layers is None:
            with torch.device("meta"):
                generator = create_generator(self.arch, **self.hparams)
            self._layers = layers_of(generator.state_dict(), dict(generator.named_modules()))
        return self._layers

    @property
    def signature(self) -> tuple:
        """What decides the function: everything but the hidden hyper-parameters."""
        return (get_architecture(self.arch).family,
                tuple(sorted((k, v) for k, v in self.hparams.items() if k not in self.hidden)))

    def describe(self) -> str:
        return describe_generator(self.arch, self.hparams)


def describe_generator(arch: str, hparams: Mapping[str, Any]) -> str:
    """``resnet (ngf 64, 9 blocks, norm instance_affine, conv bias yes, 3 -> 3 channels)``."""
    parts = [f"ngf {hparams.get('ngf')}"]
    if "num_upsampling_layers" in hparams:  # SPADE
        parts.append(f"upsampling {hparams['num_upsampling_layers']}, SPADE hidden "
                     f"{hparams.get('nhidden') or '2 x config'}, {'spectral norm, ' if hparams.get('spectral') else ''}"
                     f"{hparams.get('param_free_norm', 'batch')} norm")
    if "n_blocks" in hparams:
        parts.append(f"{hparams['n_blocks']} blocks")
    if "num_downs" in hparams:
        parts.append(f"{hparams['num_downs']} levels")
    norm = hparams.get("norm")
    if norm is not None:
        bias = hparams.get("conv_bias")
        bias = get_norm(norm).conv_bias if bias is None else bias
        parts.append(f"norm {norm}, conv bias {'yes' if bias else 'no'}")
    parts.append(f"{hparams.get('input_nc')} -> {hparams.get('output_nc')} channels")
    return f"{arch} ({', '.join(parts)})"


def candidates(layers: list[Layer], arch: str | None = None, fixed: Mapping[str, Any] | None = None
               ) -> tuple[list[Candidate], list[str]]:
    """Generators ``layers`` may be: of ``arch`` (else of every family with a structural import), with
    hyper-parameters read off the tensors, ``fixed`` ones winning; and why other families were left out."""
    fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
    archs = [arch] if arch is not None else list_family_shapes()
    found, excluded = [], []
    for name in archs:
        entry = get_architecture(name)
        try:
            shape = get_family_shape(entry.family)
        except CheckpointError:
            raise CheckpointError(f"{name} checkpoints load only as ganas checkpoints; the structural import "
                                  f"knows {', '.join(list_family_shapes())}") from None
        inferred, why = shape.infer(conv_weights(layers))
        if why is None and (contradiction := shape.contradiction(inferred, fixed)):
            if arch is not None:  # the user named the family: say what its tensors hold
                raise CheckpointError(contradiction)
            excluded.append(f"{name}: {contradiction}")
            continue
        base = {**inferred, **entry.defaults, **fixed}
        if not all(k in base for k in ("ngf", "input_nc", "output_nc", shape.depth)):
            excluded.append(f"{name}: {why}")
            continue
        found += _variants(name, base, shape, fixed)
    return found, excluded


def _variants(arch: str, base: dict, shape: FamilyShape, fixed: Mapping[str, Any]) -> Iterator[Candidate]:
    """Every norm variant and conv bias (unless fixed, or the family takes none), with every hidden setting,
    each once."""
    seen = set()
    for norm_and_bias in _norm_variants(fixed) if shape.norm_variants else [{}]:
        for hidden in shape.hidden:
            hidden = {k: v for k, v in hidden.items() if k not in fixed}
            hparams = {**base, **norm_and_bias, **hidden}
            if repr(sorted(hparams.items())) not in seen:
                seen.add(repr(sorted(hparams.items())))
                yield Candidate(arch, hparams, frozenset(hidden))


def _norm_variants(fixed: Mapping[str, Any]) -> Iterator[dict]:
    """Every norm variant, each with its default conv bias and the other (unless fixed)."""
    for norm in [fixed["norm"]] if "norm" in fixed else list_norms():
        default = get_norm(norm).conv_bias
        for bias in [fixed["conv_bias"]] if "conv_bias" in fixed else [None, not default]:
            yield {"norm": norm, "conv_bias": bias}


# -- matching -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    """How far a state dict fits a candidate: the layers matched, and the first problem (None: it fits)."""

    candidate: Candidate
    matched: int
    problem: str | None
    pairs: tuple[tuple[str, str], ...] = ()  # (checkpoint key, ganas key) when it fits


def _layer_problem(theirs: Layer, ours: Layer) -> str | None:
    """Why ``theirs`` is not ``ours`` (None: it is), naming the first tensor that does not fit."""
    have, want = theirs.shapes(), ours.shapes()
    for name, shape in theirs.tensors:
        if name not in want:
            expected = ", ".join(ours.describe(n) for n in want) or "nothing"
            return f"{theirs.key(name)} {shape} does not fit: expected there {expected}"
        if shape != want[name]:
            return f"{theirs.key(name)} {shape} does not fit: expected there {ours.describe(name)}"
    missing = [n for n in want if n not in have and n != OPTIONAL]
    if missing:
        return (f"{theirs.prefix or 'the layer'} holds {', '.join(have)} but ganas's layer there also has "
                f"{ours.describe(missing[0])}")
    return None


def fit_by_order(theirs: list[Layer], candidate: Candidate) -> Fit:
    """Compare layer by layer in order; the pairs map every checkpoint tensor to its ganas key."""
    ours = candidate.layers
    pairs: list[tuple[str, str]] = []
    for i, layer in enumerate(theirs):
        if i >= len(ours):
            name, shape = layer.tensors[0]
            return Fit(candidate, i, f"{layer.key(name)} {shape} is left over: a {candidate.describe()} ends with "
                                     f"{ours[-1].key(ours[-1].tensors[-1][0])}")
        problem = _layer_problem(layer, ours[i])
        if problem:
            return Fit(candidate, i, problem)
        pairs += [(layer.key(name), ours[i].key(name)) for name, _ in layer.tensors]
    if len(theirs) < len(ours):
        nxt = ours[len(theirs)]
        count = sum(len(layer.tensors) for layer in theirs)
        return Fit(candidate, len(theirs), f"the checkpoint ends after {count} tensors; a {candidate.describe()} "
                                           f"continues with {nxt.describe(nxt.tensors[0][0])}")
    return Fit(candidate, len(theirs), None, tuple(pairs))


def fit_by_name(state: Mapping[str, Any], candidate: Candidate, named: Callable[[str], str]) -> Fit:
    """Compare tensors by (renamed) key; ``named(key)`` says where a ganas key came from, for messages.
    ``matched`` counts the candidate's tensors that fit, so the closest candidate names the real problem."""
    ours = {layer.key(n): (layer, n) for layer in candidate.layers for n, _ in layer.tensors}
    problems, matched = [], 0
    for key, (layer, name) in ours.items():
        if key not in state:
            if name != OPTIONAL:
                problems.append(f"nothing is mapped to {layer.describe(name)}")
        elif tuple(state[key].shape) != layer.shapes()[name]:
            problems.append(f"{named(key)} {tuple(state[key].shape)} does not fit: ganas's {layer.describe(name)}")
        else:
            matched += 1
    problems += [f"{named(key)} {tuple(state[key].shape)}: a {candidate.describe()} has no such tensor"
                 for key in state if key not in ours]
    if problems:
        return Fit(candidate, matched - len(problems), problems[0])
    return Fit(candidate, matched, None, tuple((k, k) for k in state))


def best(fits: list[Fit], what: str, excluded: Sequence[str] = ()) -> Fit:
    """The fitting candidate (the one keeping the most key names when several compute the same function);
    a :class:`CheckpointError` naming the first misfit of the closest candidate, or the ambiguity."""
    good = [f for f in fits if f.problem is None]
    if not good:
        if not fits:
            raise CheckpointError(f"{what} does not look like a generator ganas can import: "
                                  + "; ".join(excluded))
        closest = max(fits, key=lambda f: f.matched)  # the first of equals: enumeration order
        raise CheckpointError(f"{what} does not fit a {closest.candidate.describe()}: {closest.problem}")
    signatures = list(dict.fromkeys(f.candidate.signature for f in good))
    if len(signatures) > 1:
        names = "; ".join(dict.fromkeys(f.candidate.describe() for f in good))
        raise CheckpointError(f"{what} fits several generators by the order and shapes of its tensors ({names}); "
                              "say which with --teacher-arch, or give the mapping with --teacher-map FILE")
    return max(good, key=lambda f: sum(old == new for old, new in f.pairs))  # max keeps the first of equals

