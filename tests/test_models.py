import pytest
import torch

from genaug.errors import ConfigError
from genaug.models import (CLASSIFIERS, ConvAutoencoder, Discriminator, Generator, build_classifier,
                           check_input_size, load_imagenet_weights)


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("n_classes", [0, 2, 3])
def test_gan_shapes(size, n_classes):
    G, D = Generator(100, 8, size, n_classes), Discriminator(8, size, n_classes)
    labels = torch.arange(4) % n_classes if n_classes else None
    x = G(torch.randn(4, 100), labels)
    assert x.shape == (4, 1, size, size) and x.min() >= -1 and x.max() <= 1
    assert D(x, labels).shape == (4,)


def test_conditional_generator_depends_on_label():
    torch.manual_seed(0)
    G = Generator(100, 8, 64, n_classes=2).eval()
    z = torch.randn(3, 100)
    a, b = G(z, torch.zeros(3, dtype=torch.long)), G(z, torch.ones(3, dtype=torch.long))
    assert (a - b).abs().mean() > 1e-5
    # The label must not drown the noise: a 100-d label embedding as large as the noise made
    # the generator ignore z (one image per class on the real data). At initialisation other
    # noise must move the image more than the other label does.
    other_noise = G(torch.randn(3, 100), torch.zeros(3, dtype=torch.long))
    assert (other_noise - a).abs().mean() > 3 * (a - b).abs().mean()


@pytest.mark.parametrize("size,channels,latent", [(224, 256, (256, 14, 14)), (64, 32, (32, 4, 4)), (96, 8, (8, 6, 6))])
def test_autoencoder_shapes(size, channels, latent):
    ae = ConvAutoencoder(size, channels)
    z = ae.encode(torch.rand(2, 1, size, size))
    assert tuple(z.shape[1:]) == latent == ae.latent_shape
    assert ae.decode(z).shape == (2, 1, size, size)


def test_autoencoder_wrong_size_is_a_clear_error():
    ae = ConvAutoencoder(64, 16)
    with pytest.raises(ValueError, match=r"expects input \(N, 1, 64, 64\).*resize"):
        ae.encode(torch.rand(1, 1, 60, 60))
    # found in session 68: an RGB batch, or one image without its batch dimension, was told to resize
    for x, fix in ((torch.rand(2, 3, 64, 64), "give greyscale images, one channel (e.g. x.mean(1, keepdim=True) of "
                                               "an RGB batch)"),
                   (torch.rand(1, 64, 64), "add the batch dimension, x.unsqueeze(0)"),
                   (torch.rand(64, 64), "give a batch (N, C, H, W)")):
        with pytest.raises(ValueError) as told:
            ae.encode(x)
        assert str(told.value) == f"autoencoder expects input (N, 1, 64, 64), got {tuple(x.shape)}; {fix}"
    with pytest.raises(ValueError, match="decoder expects latents"):
        ae.decode(torch.rand(1, 8, 4, 4))


def test_autoencoder_training_lowers_loss():
    torch.manual_seed(0)
    ae = ConvAutoencoder(32, 16)
    x = torch.rand(8, 1, 32, 32)
    opt = torch.optim.Adam(ae.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.mse_loss(ae(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("size", [32, 64])
def test_classifiers_forward_backward(name, size):
    m = build_classifier(name, 3, image_size=size)
    out = m(torch.rand(2, 1, size, size))
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("name,too_small,smallest", [("cnn", 8, 16), ("densenet121", 16, 32), ("vgg19", 24, 32),
                                                     ("lenet5", 8, 16)])
def test_input_size_too_small_for_the_pooling_is_refused_with_the_smallest_that_works(name, too_small, smallest):
    with pytest.raises(ConfigError, match=f"cannot take {too_small} px images.*--image-size {smallest} or more"):
        check_input_size(name, too_small)
    check_input_size(name, smallest)
    build_classifier(name, 2, image_size=smallest).eval()(torch.rand(1, 1, smallest, smallest))   # it really works


@pytest.mark.parametrize("name", ["cnn", "resnet34"])
def test_input_size_too_large_for_a_tensor_is_refused_as_too_large(name):
    # found in session 71: --image-size 100000000000 overflowed torch's storage size and was told
    # "its pooling shrinks them to nothing: use a larger --image-size"
    with pytest.raises(ConfigError, match=r"cannot take 100000000000 px images \(too large for one tensor"
                                          r".*: use a smaller --image-size"):
        check_input_size(name, 10**11)


def test_zoo_architectures_follow_the_reports():
    from genaug.models import AlexNet
    a = AlexNet(1, 2)
    convs = [m for m in a.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 192, 384, 256, 256] and convs[0].kernel_size == (11, 11)
    assert convs[0].stride == (4, 4) and sum(isinstance(m, torch.nn.LocalResponseNorm) for m in a.features) == 2
    assert [m.out_features for m in a.head if isinstance(m, torch.nn.Linear)][:2] == [4096, 4096]
    lm = build_classifier("lmap3", 2)
    assert [m.out_channels for m in lm.features if isinstance(m, torch.nn.Conv2d)] == [32, 32, 32, 64, 64]
    logreg = build_classifier("logreg", 2, image_size=16)
    assert [type(m) for m in logreg.modules() if isinstance(m, torch.nn.Linear)] == [torch.nn.Linear]
    with pytest.raises(ValueError, match="takes 16 px"):
        logreg(torch.rand(1, 1, 32, 32))
    from genaug.errors import ConfigError
    with pytest.raises(ConfigError, match="ImageNet weights"):
        build_classifier("vgg19", 2, pretrained=True)


def test_latent_cnn_and_wrong_model_for_latents():
    m = build_classifier("cnn", 2, in_channels=256, latent=True)
    assert m(torch.rand(2, 256, 14, 14)).shape == (2, 2)
    from genaug.errors import ConfigError
    with pytest.raises(ConfigError):
        build_classifier("resnet34", 2, 256, latent=True)
    with pytest.raises(ConfigError, match="unknown model"):
        build_classifier("vgg99", 2)


@pytest.mark.parametrize("name", ["resnet34", "densenet121"])
def test_pretrained_weights_from_local_file(tmp_path, name):
    import re
    import torchvision
    ref = getattr(torchvision.models, name)(weights=None)
    state = ref.state_dict()
    if name == "densenet121":  # the published file uses the old 'norm.1' key names
        state = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()}
    from genaug.models import IMAGENET_WEIGHT_FILES
    torch.save(state, tmp_path / IMAGENET_WEIGHT_FILES[name])
    m = build_classifier(name, 2, pretrained=True, weights_dir=str(tmp_path))
    stem = m.conv1.weight if name == "resnet34" else m.features.conv0.weight
    ref_stem = ref.conv1.weight if name == "resnet34" else ref.features.conv0.weight
    assert torch.allclose(stem[:, 0], ref_stem.sum(1))
    from genaug.errors import CheckpointError
    with pytest.raises(CheckpointError, match="download it by hand"):
        load_imagenet_weights(name, m, tmp_path / "empty", 1)
