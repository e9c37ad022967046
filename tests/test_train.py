import pytest
import torch

from genaug.train import augment_batch, augment_latents


@pytest.mark.parametrize("shape", [(3, 256, 14, 14), (2, 8, 4, 4)])
def test_latent_augmentation_shapes_and_shift(shape):
    z = torch.randn(shape)
    g = torch.Generator().manual_seed(0)
    out = augment_latents(z, g)
    assert out.shape == z.shape and torch.isfinite(out).all()
    # without noise every sample is its own latent moved by at most one cell
    g = torch.Generator().manual_seed(1)
    moved = augment_latents(z, g, shift=1, noise=0.0)
    for i in range(shape[0]):
        padded = torch.nn.functional.pad(z[i:i + 1], (1, 1, 1, 1), mode="replicate")[0]
        h, w = shape[2:]
        crops = [padded[:, y:y + h, x:x + w] for y in range(3) for x in range(3)]
        assert any(torch.equal(moved[i], c) for c in crops)
    assert torch.equal(augment_latents(z, torch.Generator(), shift=0, noise=0.0), z)


def test_pixel_augmentation_keeps_range_and_shape():
    x = torch.rand(4, 1, 16, 16)
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)
