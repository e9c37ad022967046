import pytest
import torch
import torch.nn as nn

from genaug.explain import grad_cam, target_layer
from genaug.models import build_classifier


class Blob(nn.Module):
    """Channel 0 responds to brightness, channel 1 to darkness; class k's score is channel k's mean."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.conv.weight.data = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x)).mean(dim=(2, 3))


def test_grad_cam_lights_what_drives_the_class():
    x = torch.zeros(1, 1, 16, 16)
    x[..., 2:6, 3:7] = 1.0
    m = Blob()
    heat, cls, probs = grad_cam(m, m.act, x, class_index=0)
    assert cls.tolist() == [0] and heat.shape == (1, 16, 16)
    assert torch.allclose(heat[0, 2:6, 3:7], torch.ones(4, 4)) and heat[0].sum() == pytest.approx(16.0)
    heat_pred, cls_pred, _ = grad_cam(m, m.act, x)          # predicted class: brightness wins
    assert cls_pred.tolist() == [0] and torch.allclose(heat_pred, heat)


@pytest.mark.parametrize("name,expected", [("resnet34", "layer4"), ("densenet121", "features.norm5"),
                                           ("cnn", "features.12"), ("alexnet", "features.12")])
def test_default_target_layers(name, expected):
    model = build_classifier(name, 2)
    assert target_layer(model, name)[0] == expected
    heat, _, _ = grad_cam(model, target_layer(model, name)[1], torch.rand(2, 1, 64, 64))
    assert heat.shape == (2, 64, 64) and heat.min() >= 0 and heat.max() <= 1


def test_models_without_convolutions_are_refused():
    from genaug.errors import ConfigError
    with pytest.raises(ConfigError, match="no convolutional layer"):
        target_layer(build_classifier("logreg", 2, image_size=16), "logreg")
    with pytest.raises(ConfigError, match="no layer 'nope'"):
        target_layer(build_classifier("cnn", 2), "cnn", "nope")
