"""Networks: DCGAN generator/discriminator, the convolutional autoencoder, and the classifier registry."""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn

from genaug.errors import CheckpointError, ConfigError

# --------------------------------------------------------------------------- DCGAN


def _gan_blocks(image_size: int) -> int:
    if image_size not in (64, 128):
        raise ConfigError(f"GAN image size must be 64 or 128, got {image_size}")
    return 4 if image_size == 64 else 5


class Generator(nn.Module):
    """DCGAN generator, 1x1 noise to image; a one-hot label joined to the noise makes it class-conditional.

    The label enters as a learnable embedding initialised to one-hot (Mirza & Osindero's
    cGAN). A 100-d N(0, 1) embedding, as large as the noise, let the generator ignore the
    noise: on the chest X-rays it collapsed to one image per class within the first epoch.
    """

    def __init__(self, nz: int = 100, ngf: int = 64, image_size: int = 64, n_classes: int = 0, channels: int = 1):
        super().__init__()
        self.nz, self.n_classes, self.image_size = nz, n_classes, image_size
        self.embed = None
        if n_classes > 0:
            self.embed = nn.Embedding(n_classes, n_classes)
            with torch.no_grad():
                self.embed.weight.copy_(torch.eye(n_classes))
        n_up = _gan_blocks(image_size)
        mult = 2 ** (n_up - 1)                                # 8 at 64 px, 16 at 128 px
        layers = [nn.ConvTranspose2d(nz + n_classes, ngf * mult, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z.view(z.size(0), -1, 1, 1))


class Discriminator(nn.Module):
    """DCGAN discriminator (LeakyReLU 0.2, BatchNorm on all but first and last layers).

    Class-conditional in one of two ways. ``aux=False``: one-hot label planes joined to the
    image (a projection head without spectral norm blew up in our runs). ``aux=True``
    (AC-GAN, Odena et al. 2017): the image alone goes in, and a second head predicts its class,
    so the generator is trained to make images whose class can be read from the pixels, which
    is what class fidelity measures; ``forward`` then returns (real/fake logit, class logits).
    """

    def __init__(self, ndf: int = 64, image_size: int = 64, n_classes: int = 0, channels: int = 1,
                 aux: bool = False):
        super().__init__()
        self.n_classes = n_classes
        self.aux = bool(aux and n_classes)
        label_planes = 0 if self.aux else n_classes
        n_down = _gan_blocks(image_size)
        layers = [nn.Conv2d(channels + label_planes, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult * 2), nn.LeakyReLU(0.2, True)]
            mult *= 2
        self.features = nn.Sequential(*layers)
        self.out = nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False)
        self.class_head = nn.Conv2d(ndf * mult, n_classes, 4, 1, 0) if self.aux else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        if self.aux:   # one forward for both heads, so DDP sees every parameter used
            h = self.features(x)
            return self.out(h).view(-1), self.class_head(h).flatten(1)
        if self.n_classes:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: pass labels")
            planes = nn.functional.one_hot(labels, self.n_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        return self.out(self.features(x)).view(-1)


def dcgan_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)

# --------------------------------------------------------------------------- autoencoder


class ConvAutoencoder(nn.Module):
    """Four stride-2 [Conv 3x3 -> BN -> ReLU] blocks (1->32->64->128->C) and a mirrored transposed decoder.

    224x224x1 -> 14x14xC with the defaults. ``encode`` and ``decode`` are separate so
    latents can be stored and decoded later.
    """

    WIDTHS = (32, 64, 128)

    def __init__(self, image_size: int = 224, latent_channels: int = 256, channels: int = 1):
        super().__init__()
        if image_size % 16:
            raise ConfigError(f"autoencoder input size must be a multiple of 16, got {image_size}")
        self.image_size, self.latent_channels, self.channels = image_size, latent_channels, channels
        widths = (channels,) + self.WIDTHS + (latent_channels,)
        enc = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        self.encoder = nn.Sequential(*enc)
        dec = []
        rev = widths[::-1]
        for a, b in zip(rev[:-2], rev[1:-1]):
            dec += [nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        dec += [nn.ConvTranspose2d(rev[-2], channels, 3, 2, 1, output_padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.image_size // 16, self.image_size // 16)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            # what to do depends on what differs (found in session 68: an RGB batch was told to resize)
            if x.dim() == 3 and tuple(x.shape) == expected:
                fix = "add the batch dimension, x.unsqueeze(0)"
            elif x.dim() != 4:
                fix = "give a batch (N, C, H, W)"
            elif x.shape[1] != self.channels:
                fix = ("give greyscale images, one channel (e.g. x.mean(1, keepdim=True) of an RGB batch)"
                       if self.channels == 1 else f"give {self.channels}-channel images")
            else:
                fix = f"resize images to {self.image_size} px first"
            raise ValueError(f"autoencoder expects input (N, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(x.shape)}; {fix}")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"decoder expects latents (N, {', '.join(map(str, self.latent_shape))}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

# --------------------------------------------------------------------------- classifiers


class EncodedClassifier(nn.Module):
    """An encoded cell's model from images: the autoencoder's encoder, then the latent classifier."""

    def __init__(self, encoder: ConvAutoencoder, classifier: nn.Module):
        super().__init__()
        self.encoder, self.classifier = encoder, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder.encode(x)
        # genaug encode stored the latents it trained on as float16: round the same way (the gradient,
        # for Grad-CAM, passes through the rounding unchanged)
        return self.classifier(z + (z.half().float() - z).detach())


class FeaturesHead(nn.Module):
    """A classifier as ``features`` (image -> vector, also used for FID and memorization) then ``head``."""

    def forward(self, x):
        return self.head(self.features(x))


class SimpleCNN(FeaturesHead):
    """The source report's improved CNN: four conv-BN-ReLU-pool blocks, global pooling, dropout, linear.

    One convolution per block: a second one per block cost 3.6x the compute on a 2-core CPU.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, widths=(32, 64, 128, 256), dropout: float = 0.5):
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
                       nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, n_classes))
        self.feature_dim = c


class LatentCNN(FeaturesHead):
    """A small CNN over autoencoder latents (e.g. 14x14x256).

    A 1x1 convolution first narrows the 256 latent channels: the latent path exists to be
    cheap, and a 3x3 convolution over all 256 channels at 14x14 would cost about a seventh
    of the 224 px pixel CNN by itself. This one costs about 26 MFLOPs per image against
    about 710 for SimpleCNN at 224 px.
    """

    def __init__(self, in_channels: int = 256, n_classes: int = 2, width: int = 96, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(128, n_classes))
        self.feature_dim = 128


# --------------------------------------------------------------------------- the source reports' other classifiers


class AlexNet(FeaturesHead):
    """AlexNet as published: five convolutions (64/192/384/256/256, 11x11 stride 4 first), ReLU, Local
    Response Normalization after the first two, overlapping 3x3 stride-2 max-pooling, dropout 0.5 in
    the two 4096-unit layers. Pooling is padded by one and an adaptive pool precedes the head, so it
    takes 32 or 64 px as well as 224 px."""

    def __init__(self, in_channels: int = 1, n_classes: int = 2):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, 4, 2), nn.ReLU(True), lrn(), nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(True), lrn(), nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2, padding=1),
            nn.AdaptiveAvgPool2d(6), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(256 * 36, 4096), nn.ReLU(True),
                                  nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(True), nn.Linear(4096, n_classes))


def _conv_stack(in_channels: int, widths) -> tuple[list[nn.Module], int]:
    """[Conv 3x3 -> ReLU -> MaxPool 2] per width; the layers and the last width."""
    layers, c = [], in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2, ceil_mode=True)]
        c = w
    return layers, c


class SmallAlexNet(FeaturesHead):
    """The reports' improved AlexNet: three convolutions (32/64/128) with max-pooling, dense 256, dropout."""

    def __init__(self, in_channels: int = 1, n_classes: int = 2):
        super().__init__()
        layers, c = _conv_stack(in_channels, (32, 64, 128))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(c * 16, 256), nn.ReLU(True), nn.Dropout(0.5),
                                  nn.Linear(256, n_classes))


class LeNet5(FeaturesHead):
    """LeNet-5: 6 and 16 5x5 convolutions with pooling, then 120 -> 84 -> classes."""

    def __init__(self, in_channels: int = 1, n_classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(True), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(5), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * 25, 120), nn.ReLU(True), nn.Linear(120, 84), nn.ReLU(True),
                                  nn.Linear(84, n_classes))


class LMap3(FeaturesHead):
    """Five 3x3 convolutions (32/32/32/64/64) with max-pooling, dense 128 -> 64 with dropout."""

    def __init__(self, in_channels: int = 1, n_classes: int = 2):
        super().__init__()
        layers, c = _conv_stack(in_channels, (32, 32, 32, 64, 64))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * 4, 128), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(128, 64),
                                  nn.ReLU(True), nn.Dropout(0.5), nn.Linear(64, n_classes))


class PixelMLP(FeaturesHead):
    """Baselines on raw pixels: multinomial logistic regression (no hidden layer) or a two-layer MLP."""

    def __init__(self, in_channels: int, image_size: int, n_classes: int = 2, hidden: tuple = ()):
        super().__init__()
        layers, d = [nn.Flatten()], in_channels * image_size * image_size
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(True), nn.Dropout(0.5)]
            d = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(d, n_classes)
        self.image_size = image_size

    def forward(self, x):
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"this model takes {self.image_size} px images, got {tuple(x.shape[-2:])}")
        return super().forward(x)


# torchvision's ImageNet weight files, looked up by name in a local folder (never downloaded).
IMAGENET_WEIGHT_FILES = {"resnet34": "resnet34-b627a593.pth", "densenet121": "densenet121-a639ec97.pth"}


def _one_channel_stem(name: str, model: nn.Module, in_channels: int) -> None:
    """Replace a torchvision model's RGB stem convolution by one taking ``in_channels``."""
    parent, attr = {"resnet34": lambda: (model, "conv1"), "resnet50": lambda: (model, "conv1"),
                    "densenet121": lambda: (model.features, "conv0"), "vgg19": lambda: (model.features, "0"),
                    "googlenet": lambda: (model.conv1, "conv")}[name]()
    old = getattr(parent, attr)
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                    bias=old.bias is not None)
    setattr(parent, attr, new)


def imagenet_weights_file(name: str, weights_dir: str | Path) -> Path:
    """The local torchvision ImageNet weights of ``name`` under ``weights_dir``, refused (before any training, by
    genaug benchmark) where genaug has none for the network or the file is not there."""
    if name not in IMAGENET_WEIGHT_FILES:
        raise ConfigError(f"--pretrained has ImageNet weights for {', '.join(IMAGENET_WEIGHT_FILES)}, not {name}: "
                          f"leave {name} out of --models, or train from scratch (--scratch)")
    path = Path(weights_dir or ".") / IMAGENET_WEIGHT_FILES[name]
    if not path.is_file():
        raise CheckpointError(f"--pretrained needs {path}; download it by hand from "
                              f"https://download.pytorch.org/models/{IMAGENET_WEIGHT_FILES[name]} "
                              "and pass its folder with --weights-dir")
    return path


def load_imagenet_weights(name: str, model: nn.Module, weights_dir: str | Path, in_channels: int) -> None:
    """Load torchvision ImageNet weights from a local file into a one-channel model (RGB stem summed)."""
    path = imagenet_weights_file(name, weights_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load ImageNet weights {path} safely ({str(exc)[:120]})") from None
    if name == "densenet121":  # old checkpoints name 'norm.1' what the module calls 'norm1'
        pat = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")
        state = {(pat.sub(lambda m: m.group(1) + m.group(2), k)): v for k, v in state.items()}
    stem = "conv1.weight" if name == "resnet34" else "features.conv0.weight"
    w = state[stem]
    state[stem] = w.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
    head = "fc" if name == "resnet34" else "classifier"
    state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith(head + ".")]
    if bad or unexpected:
        raise CheckpointError(f"{path} does not fit {name}: missing {bad[:3]}, unexpected {list(unexpected)[:3]}")


CORE_CLASSIFIERS = ("cnn", "resnet34", "densenet121")
ZOO_CLASSIFIERS = ("alexnet", "alexnet_small", "vgg19", "googlenet", "resnet50", "lenet5", "lmap3", "logreg", "mlp")
CLASSIFIERS = CORE_CLASSIFIERS + ZOO_CLASSIFIERS


def build_classifier(name: str, n_classes: int, in_channels: int = 1, latent: bool = False,
                     pretrained: bool = False, weights_dir: str = "", image_size: int = 64) -> nn.Module:
    """Registry: 'cnn' (LatentCNN when ``latent``), torchvision architectures with a one-channel stem,
    the source reports' other networks, and pixel baselines (``image_size`` fixes their input)."""
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown model '{name}' (known: {', '.join(CLASSIFIERS)})")
    if latent:
        if name != "cnn":
            raise ConfigError(f"model '{name}' does not take latents; the encoded variant runs with 'cnn'")
        return LatentCNN(in_channels, n_classes)
    if pretrained:   # before any model is built: a network without weights, or weights not at hand
        imagenet_weights_file(name, weights_dir)
    local = {"cnn": lambda: SimpleCNN(in_channels, n_classes), "alexnet": lambda: AlexNet(in_channels, n_classes),
             "alexnet_small": lambda: SmallAlexNet(in_channels, n_classes),
             "lenet5": lambda: LeNet5(in_channels, n_classes), "lmap3": lambda: LMap3(in_channels, n_classes),
             "logreg": lambda: PixelMLP(in_channels, image_size, n_classes),
             "mlp": lambda: PixelMLP(in_channels, image_size, n_classes, hidden=(512, 256))}
    if name in local:
        return local[name]()
    extra = {"googlenet": {"aux_logits": False, "transform_input": False, "init_weights": True}}.get(name, {})
    import torchvision  # here, not at the top: seconds to import, and the CNNs do without it
    model = getattr(torchvision.models, name)(weights=None, num_classes=n_classes, **extra)
    _one_channel_stem(name, model, in_channels)
    if pretrained:
        load_imagenet_weights(name, model, weights_dir, in_channels)
    return model


def check_input_size(name: str, image_size: int, in_channels: int = 1) -> None:
    """Refuse, before any training, a pixel input size the network's pooling cannot take. The check
    runs the model on the meta device: shapes only, no memory and no arithmetic."""
    def failure(size: int) -> str | None:
        """Why the model cannot take ``size`` px images; None where it can."""
        with torch.device("meta"):
            model = build_classifier(name, 2, in_channels, image_size=size).eval()
            try:
                model(torch.zeros(2, in_channels, size, size))
                return None
            except RuntimeError as e:
                return str(e)

    if (why := failure(image_size)) is None:
        return
    if "overflow" in why:   # found in session 71: 10**11 px was told to grow, its tensor's size being past int64
        raise ConfigError(f"model '{name}' cannot take {image_size} px images (too large for one tensor, "
                          f"let alone memory): use a smaller --image-size, e.g. 224")
    smallest = next((s for s in range(8, 1025, 8) if s > image_size and failure(s) is None), None)
    hint = f"use --image-size {smallest} or more" if smallest else "use a larger --image-size"
    raise ConfigError(f"model '{name}' cannot take {image_size} px images (its pooling shrinks them to "
                      f"nothing): {hint}")


def feature_extractor(model: nn.Module) -> nn.Module:
    """Penultimate features of a classifier (for FID/KID and memorization in feature space)."""
    if hasattr(model, "features") and hasattr(model, "head"):
        return model.features
    raise ValueError("feature extraction is defined for genaug's CNNs")
