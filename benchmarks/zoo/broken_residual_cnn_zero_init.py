"""A small ResNet whose convolutions were all zero-initialized (an init loop that meant the last
batch-norm gammas): every feature map is 0 and no filter gets a gradient."""
from torch import nn

from _zoo_common import ResidualCNN, images

EXPECT_FAIL = ["weight_init"]
EXPECT_CAUSE = "bad_init"


def build_model():
    net = ResidualCNN()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.zeros_(module.weight)
    return net


def build_dataset():
    return images()


loss_fn = nn.CrossEntropyLoss()
