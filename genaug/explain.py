"""``genaug explain``: Grad-CAM heatmaps (Selvaraju et al. 2017) over the input, as PNG overlays.

The heatmap is the ReLU of the target layer's activations weighted by the spatially averaged
gradient of the class score, upsampled to the image. The target layer is chosen per
architecture (the last convolutional stage) and can be overridden with a module name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from genaug.data.decode import name_key
from genaug.data.equalize import equalize_images
from genaug.errors import ConfigError
from genaug.models import EncodedClassifier
from genaug.predict import (checkpoint_probs, decided_classes, files_note, image_chunks, input_resize, input_size,
                            load_classifier, nothing_read)
from genaug.train import inference_batch

# The last convolutional stage, where Grad-CAM is usually taken; other models: their last Conv2d.
DEFAULT_LAYERS = {"resnet34": "layer4", "resnet50": "layer4", "densenet121": "features.norm5",
                  "googlenet": "inception5b"}


def check_explain_out(out_root: str | Path, checkpoint: str | Path, images: list[str]) -> None:
    """``explain --out`` outside the folders of X-rays involved: each folder of images given, and the data
    the checkpoint's benchmark run learnt from. Overlays are X-rays with a heatmap on them; under
    ``data/train/NORMAL`` a tool that walks class folders would train on test images' overlays (session 53
    found `genaug explain data/test/NORMAL --out data/train/NORMAL` writing them there)."""
    from genaug.data.loading import check_out_outside_data
    from genaug.runs import data_learnt_from

    holds = "Grad-CAM overlays of X-rays"
    for folder in (f for f in images if Path(f).is_dir()):
        check_out_outside_data(out_root, folder, "the folder of images given,", holds)
    if spec := data_learnt_from(Path(checkpoint).resolve().parent.parent):   # models/<cell>.pt of a benchmark run
        check_out_outside_data(out_root, spec, "the data folder the model learnt from,", holds)


def target_layer(model: nn.Module, model_name: str, layer: str = "") -> tuple[str, nn.Module]:
    modules = dict(model.named_modules())
    name = layer or DEFAULT_LAYERS.get(model_name, "")
    if not name:
        convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ConfigError(f"model '{model_name}' has no convolutional layer for Grad-CAM")
        name = convs[-1]
    if name not in modules:
        raise ConfigError(f"no layer '{name}' in {model_name}; e.g. {_conv_names(model)}")
    return name, modules[name]


def _conv_names(model: nn.Module) -> str:
    return ", ".join(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))[:200]


def layers_named_in(model: nn.Module) -> nn.Module:
    """The network whose modules --layer names: an encoded cell's latent classifier (the heatmap still covers
    the image it read), else the model itself."""
    return model.classifier if isinstance(model, EncodedClassifier) else model


def check_feature_maps(model: nn.Module, layer: nn.Module, layer_name: str, size: int, device="cpu") -> None:
    """Grad-CAM weighs the layer's channels by their gradients averaged over its height and width, so the
    layer must give (N, C, H, W) maps; a whole image of ``size`` pixels through ``model`` tells. The CNN's
    'features' ends in pooling and gives (N, C): given as --layer it was a traceback (session 60)."""
    shapes = []
    handle = layer.register_forward_hook(lambda module, inputs, output: shapes.append(getattr(output, "shape", None)))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, size, size, device=device))
    finally:
        handle.remove()
    if not shapes or shapes[0] is None or len(shapes[0]) != 4:
        what = ("is not used by the model" if not shapes else
                f"gives {'no tensor' if shapes[0] is None else 'outputs of shape ' + str(tuple(shapes[0]))}")
        raise ConfigError(f"layer '{layer_name}' {what}, not feature maps (N, C, H, W) that Grad-CAM needs; "
                          f"name a convolutional layer, e.g. {_conv_names(layers_named_in(model))}")


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, class_index: int | torch.Tensor | None = None):
    """(heatmaps in [0, 1] of x's size, class indices explained, probabilities) for a batch x: of one class
    for all (an int), a class per image (a tensor) or each image's likeliest (None)."""
    store = {}

    def keep(module, inputs, output):
        # Pass a copy downstream: the next layer may be an in-place ReLU, which would
        # overwrite the activations we keep and break the gradient hook.
        store["act"] = output.detach()
        out = output.clone()
        out.register_hook(lambda g: store.__setitem__("grad", g))
        return out

    handle = layer.register_forward_hook(keep)
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(x.clone().requires_grad_(True))
            if class_index is None:
                cls = logits.argmax(1)
            else:
                cls = torch.as_tensor(class_index, dtype=torch.long, device=logits.device).expand(len(x))
            model.zero_grad(set_to_none=True)
            logits.gather(1, cls[:, None]).sum().backward()
    finally:
        handle.remove()
    act, grad = store["act"], store["grad"].detach()
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]
    return (cam / peak).cpu(), cls.cpu(), torch.softmax(logits.detach(), 1).cpu()


# the least height an overlay is written at: a 64 px model's overlay was a 128 x 64 thumbnail (session 86)
OVERLAY_MIN_HEIGHT = 256


def overlay(gray: np.ndarray, heat: np.ndarray) -> Image.Image:
    """The heatmap in matplotlib's jet colours over the grey image, side by side with the image, both as the model
    saw them (its input size), each pixel repeated a whole number of times to be at least `OVERLAY_MIN_HEIGHT`
    tall: enlarged to be seen, not smoothed into detail the model never had."""
    import matplotlib
    colours = (matplotlib.colormaps["jet"](heat)[..., :3] * 255).astype(np.float32)
    base = np.repeat(gray[..., None].astype(np.float32), 3, axis=2)
    mixed = (0.55 * base + 0.45 * colours).clip(0, 255).astype(np.uint8)
    pair = np.concatenate([base.astype(np.uint8), mixed], axis=1)
    times = -(-OVERLAY_MIN_HEIGHT // pair.shape[0])
    return Image.fromarray(pair.repeat(times, axis=0).repeat(times, axis=1))


def explain_images(checkpoint: str | Path, targets, out_dir: Path, class_name: str = "", layer: str = "",
                   device: torch.device | str = "cpu", batch_size: int | None = None,
                   chunk: int = 256, notes: list[str] | None = None) -> tuple[list[list], list[tuple[str, str]], str]:
    """Write <n>_<name>_gradcam.png per image into out_dir; rows (file, prediction, explained class, its
    probability, png). The prediction and probabilities are genaug predict's, threshold and test-time copies
    included, so that the class explained by default is the one predict gives (it took the likelier class
    before, which for 7 of 16 images of a model with threshold 0.43 was not predict's, session 54); the
    heatmap is of the image as given. ``notes`` gains what a user should know beside them (`files_note`)."""
    model, ckpt = load_classifier(checkpoint)
    classes, size = ckpt["classes"], input_size(ckpt)
    if class_name:   # in any case and Unicode form, as genaug gan --class reads it
        match = [c for c in classes if name_key(c) == name_key(class_name)]
        if not match:
            raise ConfigError(f"unknown class '{class_name}'; this model knows {', '.join(classes)}")
        class_name = match[0]
    layer_name, module = target_layer(layers_named_in(model), ckpt["model_name"], layer)
    model.to(device)
    check_feature_maps(model, module, layer_name, size, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    # a chunk in memory at a time
    for names, images in image_chunks(targets, size, skipped, chunk, desc="grad-cam", resize=input_resize(ckpt)):
        rows += _explain_chunk(model, module, ckpt, names, images, out_dir, len(rows), class_name, device, batch_size)
    if not rows:
        raise nothing_read(skipped)
    if notes is not None and (note := files_note(ckpt, targets)):
        notes.append(note)
    return rows, skipped, layer_name


def _explain_chunk(model, module, ckpt: dict, names: list[str], images: np.ndarray, out_dir: Path, first: int,
                   class_name: str, device, batch_size: int | None) -> list[list]:
    """Overlays and rows for one chunk of decoded images; ``first``: the number of the chunk's first image."""
    classes = ckpt["classes"]
    seen = equalize_images(images, ckpt.get("equalize", "none"))   # what the model reads; the overlay shows the image as given
    probs = checkpoint_probs(model, ckpt, seen, device)
    predicted = decided_classes(probs, ckpt)
    explained = torch.full_like(predicted, classes.index(class_name)) if class_name else predicted
    batch_size = batch_size or inference_batch(torch.from_numpy(seen[:1]), device)
    rows = []
    for start in range(0, len(names), batch_size):
        part = slice(start, start + batch_size)
        x = torch.from_numpy(seen[part]).float().div(255)[:, None].to(device)
        heat, _, _ = grad_cam(model, module, x, explained[part].to(device))
        for i in range(start, start + len(x)):
            png = f"{first + i:05d}_{Path(names[i]).stem[:60]}_gradcam.png"
            overlay(images[i], heat[i - start].numpy()).save(out_dir / png)
            k = int(explained[i])
            rows.append([names[i], classes[int(predicted[i])], classes[k], f"{float(probs[i, k]):.6f}", png])
    return rows
