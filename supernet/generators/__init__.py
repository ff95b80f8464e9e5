"""Generator architectures. Register them by name in :mod:`supernet.registry`."""
from .base import ChannelGenerator
from .deep import DeepResnetGenerator, DeepUnetGenerator
from .resnet import MobileResnetGenerator, ResnetGenerator
from .spade import MobileSpadeGenerator, SpadeGenerator
from .unet import UnetGenerator

__all__ = ["ChannelGenerator", "DeepResnetGenerator", "DeepUnetGenerator", "ResnetGenerator", "MobileResnetGenerator",
           "UnetGenerator", "SpadeGenerator", "MobileSpadeGenerator"]
