import numpy as np
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


@pytest.mark.parametrize("layer,shape", [("features", "(1, 256)"), ("head.1", "(1, 2)")])
def test_a_layer_without_feature_maps_is_refused_with_the_convolutional_ones(layer, shape):
    """Found in session 60: `genaug explain --layer features` (the CNN's stack, which ends in pooling) was an
    IndexError traceback from inside Grad-CAM; a layer must give (N, C, H, W) maps."""
    from genaug.errors import ConfigError
    from genaug.explain import check_feature_maps
    model = build_classifier("cnn", 2)
    name, module = target_layer(model, "cnn", layer)
    with pytest.raises(ConfigError, match=rf"layer '{layer}' gives outputs of shape \{shape[:-1]}\), not feature "
                                          r"maps .* e\.g\. features\.0, features\.4"):
        check_feature_maps(model, module, name, 64)
    check_feature_maps(model, target_layer(model, "cnn")[1], "features.12", 64)   # the default passes


@pytest.mark.parametrize("threshold,expected", [(0.0, "PNEUMONIA"), (1.0 + 1e-6, "NORMAL")])
def test_explain_explains_the_class_predict_gives(tmp_path, threshold, expected):
    """By default the class explained is genaug predict's, decided by the validation threshold the checkpoint
    holds, not the likelier class (session 54: for 7 of 16 test images of a model with threshold 0.43 explain
    explained NORMAL where predict said PNEUMONIA). A threshold of 0 or above 1 makes every image one class."""
    import csv
    import io

    from PIL import Image

    from genaug.explain import explain_images
    from genaug.predict import predict_images

    torch.manual_seed(0)
    model = build_classifier("cnn", 2)
    torch.save({"kind": "classifier", "model_name": "cnn", "model": model.state_dict(),
                "classes": ["NORMAL", "PNEUMONIA"], "in_channels": 1, "image_size": 32, "threshold": threshold},
               tmp_path / "m.pt")
    (tmp_path / "imgs").mkdir()
    for i in range(5):
        Image.fromarray((torch.rand(40, 40) * 255).byte().numpy()).save(tmp_path / "imgs" / f"{i}.png")
    rows, skipped, _ = explain_images(tmp_path / "m.pt", [str(tmp_path / "imgs")], tmp_path / "out", batch_size=2)
    predicted = {r["file"]: r for r in csv.DictReader(io.StringIO(predict_images(tmp_path / "m.pt", [str(tmp_path / "imgs")])[0]))}
    assert not skipped and len(rows) == 5 and all((tmp_path / "out" / r[4]).is_file() for r in rows)
    # the 32 px model's input and heatmap side by side, each pixel 8 x 8 so that it can be seen (session 86)
    written = np.asarray(Image.open(tmp_path / "out" / rows[0][4]))
    assert written.shape == (256, 512, 3) and (written[:8, :8] == written[0, 0]).all()
    for file, prediction, explained, probability, _ in rows:
        assert prediction == explained == predicted[file]["prediction"] == expected
        assert float(probability) == pytest.approx(float(predicted[file][f"p_{expected}"]), abs=1e-6)
    # read a few images at a time (a folder of 100,000 X-rays is never all in memory): the same rows, numbered on
    chunked, _, _ = explain_images(tmp_path / "m.pt", [str(tmp_path / "imgs")], tmp_path / "chunked", chunk=2)
    assert [r[:4] for r in chunked] == [r[:4] for r in rows] and [r[4][:5] for r in chunked] == [f"{i:05d}" for i in range(5)]
    assert predict_images(tmp_path / "m.pt", [str(tmp_path / "imgs")], chunk=2) == predict_images(tmp_path / "m.pt", [str(tmp_path / "imgs")])
    # a model that learnt from JPEGs of 1000-2000 px (training_files, session 82): these small PNGs are named
    notes, plain = [], []
    torch.save(torch.load(tmp_path / "m.pt", weights_only=True) | {"training_files": {
        "files": 100, "formats": {"JPEG": 100}, "modes": {"L": 100}, "jpeg_qualities": {"75": 100},
        "widths": [1000, 2000], "heights": [1000, 2000]}}, tmp_path / "jpeg.pt")
    explain_images(tmp_path / "jpeg.pt", [str(tmp_path / "imgs")], tmp_path / "shifted", notes=notes)
    explain_images(tmp_path / "m.pt", [str(tmp_path / "imgs")], tmp_path / "unrecorded", notes=plain)
    assert len(notes) == 1 and plain == []
    assert notes[0].startswith("these files differ from those the model learnt from: file format PNG where the "
                                   "model learnt from JPEG; 40 x 40 px (median) where the model learnt from "
                                   "1000-2000 x 1000-2000 px. ")
    said = []
    predict_images(tmp_path / "jpeg.pt", [str(tmp_path / "imgs")], notes=said)
    assert said == notes
    # a batch gives each image the heatmap it gets alone (eval mode: no image sees another)
    x, layer = torch.rand(5, 1, 32, 32), target_layer(model, "cnn")[1]
    cls = torch.tensor([0, 1, 1, 0, 1])
    together = grad_cam(model, layer, x, cls)[0]
    alone = torch.cat([grad_cam(model, layer, x[i:i + 1], cls[i:i + 1])[0] for i in range(5)])
    assert torch.allclose(together, alone, atol=1e-4)


def test_explain_class_is_read_in_any_case_and_unicode_form(tmp_path):
    # found in session 75: --class typed composed (NFC, as a keyboard types it) was unknown to a model whose class
    # macOS had named decomposed (NFD), though the message printed the two alike
    import unicodedata

    from PIL import Image

    from genaug.explain import explain_images
    composed, decomposed = (unicodedata.normalize(form, "Neumonía") for form in ("NFC", "NFD"))
    torch.manual_seed(0)
    torch.save({"kind": "classifier", "model_name": "cnn", "model": build_classifier("cnn", 2).state_dict(),
                "classes": ["NORMAL", decomposed], "in_channels": 1, "image_size": 32, "threshold": 0.5},
               tmp_path / "m.pt")
    (tmp_path / "imgs").mkdir()
    Image.fromarray((torch.rand(40, 40) * 255).byte().numpy()).save(tmp_path / "imgs" / "0.png")
    for typed in (composed, composed.upper()):
        rows, _, _ = explain_images(tmp_path / "m.pt", [str(tmp_path / "imgs")], tmp_path / "out", class_name=typed)
        assert [r[2] for r in rows] == [decomposed]
