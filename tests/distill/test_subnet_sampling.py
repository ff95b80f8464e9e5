"""Both distillation recipes sample their per-step subnet through ChannelSearchSpace.draw, unchanged."""
import random
from types import SimpleNamespace

import pytest

from distill.gan_compression import GANCompressionRecipe
from distill.loop import derived_seed
from distill.omgd import OMGDRecipe, OMGDStudent
from supernet import get_space
from supernet.space import format_config

# Recorded on the code before the recipes' own copies of the sampling rule were removed:
# recipe steps 0..4 of channels-48 with the training loop's per-step rng (seed 7), GAN Compression and OMGD alike.
PINNED_STEPS = {
    "uniform": ["48_32_48_32_48_48_48_24", "32_32_32_40_32_40_16_48", "48_48_40_40_32_40_32_32",
                "48_32_48_48_32_32_24_32", "32_32_32_48_40_40_24_16"],
    "sandwich": ["48_48_48_48_48_48_48_48", "32_32_32_32_32_32_16_16", "48_48_40_40_32_40_32_32",
                 "48_48_48_48_48_48_48_48", "32_32_32_32_32_32_16_16"],
}


@pytest.mark.parametrize("rule", sorted(PINNED_STEPS))
def test_both_recipes_draw_the_recorded_config_per_step(rule):
    space = get_space("channels-48")
    fake = SimpleNamespace(space=space, settings=SimpleNamespace(sampling=rule), student=SimpleNamespace(elastic=True))
    # OMGD's recipes (paired and unpaired) draw through their shared OMGDStudent
    omgd = SimpleNamespace(learner=SimpleNamespace(config_for=lambda step, rng: OMGDStudent.config_for(fake, step, rng)))
    for name, draw in (("GAN Compression", lambda step, rng: GANCompressionRecipe.config_for(fake, step, rng)),
                       ("OMGD", lambda step, rng: OMGDRecipe.config_for(omgd, step, rng))):
        drawn = [format_config(draw(step, random.Random(derived_seed(7, "recipe", step)))) for step in range(5)]
        assert drawn == PINNED_STEPS[rule], name
        rngs = [random.Random(derived_seed(7, "recipe", step)) for step in range(5)]
        assert [format_config(space.draw(rule, step, rngs[step])) for step in range(5)] == PINNED_STEPS[rule]
