import math

import pytest
import torch

from genaug.errors import ConfigError
from genaug.train import (AUGMENTATIONS, DEFAULT_AUGMENTATIONS, augment_batch, augment_latents, batch_of,
                          fit_classifier, latent_spread, make_scheduler, pca_lighting, predict_probs, stop_early,
                          train_one_epoch)


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


def test_latent_spread_is_the_channel_std_of_the_plain_encodings():
    z = (torch.randn(50, 3, 4, 4) * torch.tensor([0.5, 1.0, 3.0]).view(1, 3, 1, 1)).half()
    want = z.float().std(dim=(0, 2, 3), keepdim=True)
    assert torch.allclose(latent_spread(z, chunk=7), want, rtol=1e-4)
    views = torch.stack([z, z * 10], 1)          # (N, views, C, h, w): only the plain view counts
    assert torch.allclose(latent_spread(views, chunk=7), want, rtol=1e-4)


def test_latent_noise_follows_the_given_spread():
    z = torch.zeros(64, 3, 8, 8)
    spread = torch.tensor([0.0, 1.0, 4.0]).view(1, 3, 1, 1)
    out = augment_latents(z, torch.Generator().manual_seed(0), shift=0, noise=0.1, spread=spread)
    assert torch.equal(out[:, 0], z[:, 0])     # no spread, no noise
    assert out[:, 1].std().item() == pytest.approx(0.1, rel=0.05)
    assert out[:, 2].std().item() == pytest.approx(0.4, rel=0.05)


def test_pixel_augmentation_keeps_range_and_shape():
    x = torch.rand(4, 1, 16, 16)
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)


def test_each_augmentation_switch_alone_changes_the_batch_and_none_leaves_it():
    x = torch.rand(6, 1, 16, 16) * 0.8 + 0.1
    assert torch.equal(augment_batch(x.clone(), torch.Generator().manual_seed(0), enabled=""), x)
    for name in AUGMENTATIONS:
        out = augment_batch(x.clone(), torch.Generator().manual_seed(0), enabled=name)
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
        assert not torch.equal(out, x), name
    with pytest.raises(ConfigError, match="unknown augmentation warp"):
        augment_batch(x, torch.Generator(), enabled="rotate,warp")


@pytest.mark.parametrize("augment", [
    lambda x, g, shared: augment_batch(x, g, enabled=",".join(AUGMENTATIONS), shared=shared),
    lambda x, g, shared: augment_latents(x, g, spread=torch.ones(1, 1, 1, 1), shared=shared),
], ids=["pixels", "latents"])
def test_a_shared_draw_changes_every_image_of_a_batch_alike(augment):
    # test-time copies: an image's copy must not depend on the batch it is in
    x = torch.rand(1, 1, 16, 16).expand(5, 1, 16, 16).clone() * 0.8 + 0.1
    alike = augment(x.clone(), torch.Generator().manual_seed(2), True)
    assert not torch.equal(alike[0], x[0]) and all(torch.allclose(alike[i], alike[0], atol=1e-6) for i in range(5))
    apart = augment(x.clone(), torch.Generator().manual_seed(2), False)   # training: a draw per image
    assert not all(torch.allclose(apart[i], apart[0], atol=1e-6) for i in range(5))


class _MeanPixel(torch.nn.Module):
    """Logits (0, 10 * mean pixel): a model whose probabilities a hand computation can follow."""

    def forward(self, x):
        return torch.stack([torch.zeros(len(x)), 10 * x.mean(dim=(1, 2, 3))], 1)


def test_test_time_augmentation_averages_the_plain_image_and_its_copies():
    data = (torch.rand(7, 1, 16, 16) * 255).to(torch.uint8)
    model = _MeanPixel()
    plain = predict_probs(model, data)
    assert torch.allclose(plain[:, 1], torch.sigmoid(10 * (data.float() / 255).mean(dim=(1, 2, 3))))
    # by hand: the mean of the softmax over the plain batch and copies 1 and 2, each drawn from its own seed
    x = data.float() / 255
    copies = [x] + [augment_batch(x, torch.Generator().manual_seed(5 * 1_000_003 + k), shared=True) for k in (1, 2)]
    want = torch.stack([torch.softmax(model(c), 1) for c in copies]).mean(0)
    got = predict_probs(model, data, tta=2, seed=5)
    assert torch.allclose(got, want, atol=1e-6) and not torch.allclose(got, plain, atol=1e-4)
    # an image's probabilities are the same whichever batch it is predicted in, or alone
    assert torch.allclose(predict_probs(model, data, batch_size=3, tta=2, seed=5), got, atol=1e-6)
    assert torch.allclose(predict_probs(model, data[4:5], tta=2, seed=5), got[4:5], atol=1e-6)


@pytest.mark.parametrize("shape,device,batch", [((1, 32, 32), "cpu", 64), ((1, 64, 64), "cpu", 64),
                                                 ((1, 128, 128), "cpu", 16), ((1, 224, 224), "cpu", 8),
                                                 ((256, 14, 14), "cpu", 64), ((1, 224, 224), "cuda", 256)])
def test_inference_batches_on_a_cpu_shrink_with_the_image(shape, device, batch):
    # batch 256 at 224 px ran DenseNet-121 at about half the speed of batch 8 on this CPU (bench/eval_batch.py);
    # the batch is only chosen, never a tensor made, so "cuda" needs no GPU here
    from genaug.train import inference_batch
    assert inference_batch(torch.zeros(0, *shape), device) == batch


def test_flip_alone_mirrors_exactly_the_images_it_picks():
    x = torch.rand(16, 1, 8, 8)
    out = augment_batch(x.clone(), torch.Generator().manual_seed(3), enabled="flip")
    mirrored = [torch.allclose(out[i], x[i].flip(-1), atol=1e-5) for i in range(16)]
    kept = [torch.allclose(out[i], x[i], atol=1e-5) for i in range(16)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_default_switches_are_the_documented_default():
    x = torch.rand(4, 1, 16, 16)
    a = augment_batch(x.clone(), torch.Generator().manual_seed(5))
    b = augment_batch(x.clone(), torch.Generator().manual_seed(5), enabled="contrast,rotate,zoom,shift,brightness")
    assert torch.equal(a, b) and DEFAULT_AUGMENTATIONS == "rotate,shift,zoom,brightness,contrast"


def test_pca_lighting_on_one_channel_is_alpha_times_pixel_variance():
    # hand-computed: one channel -> one eigenpair (variance, 1); the offset is alpha_i * variance
    x = torch.tensor([0.0, 0.2, 0.4, 0.6]).view(1, 1, 2, 2).repeat(3, 1, 1, 1)
    var = torch.var(torch.tensor([0.0, 0.2, 0.4, 0.6] * 3))   # unbiased, as torch.cov
    off = pca_lighting(x, torch.Generator().manual_seed(0), std=0.1)
    alpha = torch.randn(3, 1, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.allclose(off.view(3), (alpha * var).view(3), atol=1e-6)


def _lrs(name, epochs=9, steps=4, lr=0.1):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched, per_batch = make_scheduler(opt, name, epochs, steps)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        for _ in range(steps if per_batch else 1):
            opt.step()
            if sched is not None:
                sched.step()
    return out, per_batch


@pytest.mark.parametrize("name,check", [
    ("constant", lambda lrs: all(v == 0.1 for v in lrs)),
    ("cosine", lambda lrs: lrs[0] == 0.1 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.01),
    ("step", lambda lrs: lrs[:3] == [0.1] * 3 and abs(lrs[3] - 0.01) < 1e-12 and abs(lrs[6] - 0.001) < 1e-12),
    ("exponential", lambda lrs: abs(lrs[-1] - 0.1 * 0.01 ** (8 / 9)) < 1e-9 and all(a > b for a, b in zip(lrs, lrs[1:]))),
    ("onecycle", lambda lrs: lrs[0] < 0.02 and max(lrs) > 0.08 and lrs[-1] < max(lrs) / 5),
])
def test_learning_rate_schedules(name, check):
    lrs, per_batch = _lrs(name)
    assert per_batch == (name == "onecycle")
    assert check(lrs), lrs


def test_unknown_schedule_is_a_config_error():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ConfigError, match="unknown learning-rate schedule 'warm'"):
        make_scheduler(opt, "warm", 3, 2)


def test_fit_classifier_with_onecycle_records_the_lr_it_used():
    torch.manual_seed(0)
    x = (torch.rand(32, 1, 8, 8) * 255).to(torch.uint8)
    y = torch.arange(32) % 2
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    res = fit_classifier(model, x, y, x, y, 2, epochs=4, batch_size=8, lr=0.05, patience=10,
                         schedule="onecycle", augmentations="noise,flip")
    lrs = [h["lr"] for h in res.history]
    assert len(lrs) == 4 and lrs[0] < lrs[1] and lrs[-1] < lrs[1]


class ConstantLogits(torch.nn.Module):
    """Logits log(1/4), log(3/4) for every image (p = 1/4, 3/4), and a record of each image's mean pixel."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor([0.25, 0.75]).log())
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().flatten(1).mean(1))
        return self.logits.expand(len(x), 2)


def _one_epoch_loss(model, images, labels, **kw) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.0)   # the loss of the untouched model, every batch
    loss, _ = train_one_epoch(model, opt, images, labels, torch.ones(2), 4, torch.Generator().manual_seed(0),
                              "cpu", False, "test", **kw)
    return loss


@pytest.mark.parametrize("smoothing,expected", [
    (0.0, -math.log(0.75)),                                   # 0.28768
    (0.2, -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))),    # 0.39754: 0.2 spread evenly over 2 classes
])
def test_label_smoothing_loss_by_hand(smoothing, expected):
    images = torch.zeros(8, 1, 4, 4, dtype=torch.uint8)
    loss = _one_epoch_loss(ConstantLogits(), images, torch.ones(8, dtype=torch.long), label_smoothing=smoothing)
    assert loss == pytest.approx(expected, rel=1e-6)


def test_mixup_blends_images_and_targets_alike():
    # black images are class 0, white ones class 1: a blend's mean pixel is then its class-1 target
    images = torch.cat([torch.zeros(4, 1, 4, 4), torch.full((4, 1, 4, 4), 255.0)]).to(torch.uint8)
    labels = torch.tensor([0] * 4 + [1] * 4)
    plain, mixed = ConstantLogits(), ConstantLogits()
    _one_epoch_loss(plain, images, labels)
    assert set(torch.cat(plain.seen).tolist()) == {0.0, 1.0}
    torch.manual_seed(0)
    loss = _one_epoch_loss(mixed, images, labels, mixup=0.4)
    t = torch.cat(mixed.seen)
    assert ((t > 0.01) & (t < 0.99)).any()
    expected = -((1 - t) * math.log(0.25) + t * math.log(0.75)).mean().item()
    assert loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("epoch,best,patience,min_epochs,stops", [
    (5, 1, 4, 0, True),     # the old rule: 4 epochs without a better val loss
    (4, 1, 4, 0, False),
    (5, 1, 4, 6, False),    # patience does not count the epochs before min_epochs
    (9, 1, 4, 6, False),
    (10, 1, 4, 6, True),
    (10, 6, 4, 6, True),    # a best epoch at or after min_epochs: same as the old rule
    (12, 9, 4, 6, False),
])
def test_stop_early(epoch, best, patience, min_epochs, stops):
    assert stop_early(epoch, best, patience, min_epochs) is stops


@pytest.mark.parametrize("min_epochs,epochs_run", [(0, 2), (3, 4)])
def test_fit_classifier_waits_for_min_epochs_before_stopping(min_epochs, epochs_run):
    # lr 0 and no batch norm: the val loss never improves after epoch 1, so patience 1 stops
    # one epoch after the later of the best epoch (1) and min_epochs
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    x, y = torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8), torch.tensor([0, 1] * 4)
    fit = fit_classifier(model, x, y, x, y, 2, epochs=10, batch_size=4, lr=0.0, patience=1, augment=False,
                         schedule="constant", min_epochs=min_epochs)
    assert fit.epochs_run == epochs_run and fit.best_epoch == 1


def _small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4 * 6 * 6, 2))


def test_training_state_is_written_once_state_every_seconds_have_passed(tmp_path, monkeypatch):
    import types

    import genaug.train as train
    clock, written = [0.0], []
    real_eval, real_save = train.evaluate_loss, train.atomic_torch_save

    def epoch_of_10_seconds(*a, **k):   # the validation pass ends each epoch: each epoch takes 10 s here
        clock[0] += 10
        return real_eval(*a, **k)

    def save(state, path):
        written.append(state["epoch"])
        real_save(state, path)

    monkeypatch.setattr(train, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(train, "evaluate_loss", epoch_of_10_seconds)
    monkeypatch.setattr(train, "atomic_torch_save", save)
    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(16) % 2
    kw = dict(epochs=6, batch_size=8, lr=0.01, patience=10, seed=0)
    fit_classifier(_small_net(), x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "a.pt", state_every=25, **kw)
    assert written == [3, 6]   # 30 s after the start, then 30 s after that write
    written.clear()
    fit_classifier(_small_net(), x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "b.pt", **kw)
    assert written == [1, 2, 3, 4, 5, 6]   # the library's default: after every epoch


@pytest.mark.parametrize("schedule,loss", [
    ("cosine", {}), ("onecycle", {}), ("constant", {}),
    ("cosine", {"mixup": 0.4, "label_smoothing": 0.1}),   # mixup draws from torch's global generator
    ("cosine", {"ema_decay": 0.9}),   # the average is saved beside the weights that feed it
])
def test_interrupted_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch, schedule, loss):
    import genaug.train as train

    x = torch.randint(0, 256, (24, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(24) % 2
    kw = dict(epochs=4, batch_size=8, lr=0.01, patience=10, schedule=schedule, seed=3, **loss)
    whole = _small_net()
    ref = fit_classifier(whole, x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "whole.pt", **kw)

    real_eval, calls = train.evaluate_loss, []

    def stop_in_epoch_3(*a, **k):   # the process dies during epoch 3; epochs 1 and 2 were saved
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_eval(*a, **k)

    monkeypatch.setattr(train, "evaluate_loss", stop_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(_small_net(), x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "cut.pt", **kw)
    cut = torch.load(tmp_path / "cut.pt", weights_only=True)
    assert cut["epoch"] == 2
    # the best weights are written apart from the current ones only when they differ
    assert (cut["best_state"] is None) == (cut["best_epoch"] == 2)
    monkeypatch.setattr(train, "evaluate_loss", real_eval)
    torch.manual_seed(123)   # the global generator is restored from the file, not from this
    resumed_net = _small_net()
    resumed = fit_classifier(resumed_net, x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "cut.pt", **kw)

    assert resumed.history == ref.history and resumed.epochs_run == 4
    for (name, a), b in zip(whole.state_dict().items(), resumed_net.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("other", [{"epochs": 3}, {"ema_decay": 0.9}])
def test_a_fit_checkpoint_from_other_settings_is_refused(tmp_path, other):
    from genaug.errors import CheckpointError

    x, y = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8), torch.tensor([0, 1] * 4)
    fit_classifier(_small_net(), x, y, x, y, 2, epochs=1, batch_size=4, lr=0.01, checkpoint=tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="delete it to train this one from the start"):
        fit_classifier(_small_net(), x, y, x, y, 2, **{"epochs": 1, **other}, batch_size=4, lr=0.01,
                       checkpoint=tmp_path / "c.pt")


def test_the_weight_average_follows_each_step_by_hand():
    from genaug.train import make_ema

    net, d = _small_net(), 0.8
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    after_steps = []
    opt.register_step_post_hook(lambda *_: after_steps.append(net[-1].weight.detach().clone()))
    ema = make_ema(net, d)
    x, y = torch.randint(0, 256, (12, 1, 8, 8), dtype=torch.uint8), torch.arange(12) % 2
    train_one_epoch(net, opt, x, y, torch.ones(2), 4, torch.Generator().manual_seed(0), "cpu", False, "t", ema=ema)
    assert len(after_steps) == 3
    w1, w2, w3 = after_steps   # the first step is copied; each later one moves the average by 1 - decay
    expected = d * (d * w1 + (1 - d) * w2) + (1 - d) * w3
    assert torch.allclose(ema.module[-1].weight, expected, atol=1e-6)
    assert not torch.allclose(ema.module[-1].weight, net[-1].weight)


def test_the_average_gets_batchnorm_statistics_of_its_own_from_the_plain_training_images():
    from genaug.train import recompute_batchnorm, to_float

    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    recompute_batchnorm(net, x, "cpu", batch_size=8)
    bn, pixels = net[0], to_float(x.clone())
    # a cumulative average over two equal batches: the mean of their means, and of their unbiased variances
    assert bn.running_mean.item() == pytest.approx(pixels.mean().item(), rel=1e-5)
    assert bn.running_var.item() == pytest.approx((pixels[:8].var() + pixels[8:].var()).item() / 2, rel=1e-5)
    recompute_batchnorm(net, x[:15], "cpu", batch_size=8)   # the last, short batch left out, as in training
    assert bn.running_mean.item() == pytest.approx(pixels[:8].mean().item(), rel=1e-5)
    views = torch.stack([x.float(), torch.zeros_like(x, dtype=torch.float)], 1)   # latents with views: the first
    recompute_batchnorm(net, views, "cpu", batch_size=8)
    assert bn.running_mean.item() == pytest.approx(x.float().mean().item(), rel=1e-5)


def test_a_fit_with_a_weight_average_returns_and_validates_the_average(tmp_path, monkeypatch):
    import genaug.train as train

    scored = []
    real_eval = train.evaluate_loss

    def remember(model, *a, **k):
        scored.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_eval(model, *a, **k)

    monkeypatch.setattr(train, "evaluate_loss", remember)
    x, y = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8), torch.arange(16) % 2
    net = _small_net()
    fit = fit_classifier(net, x, y, x[:8], y[:8], 2, epochs=3, batch_size=8, lr=0.05, patience=10,
                         ema_decay=0.5)
    kept = scored[fit.best_epoch - 1]
    for name, value in net.state_dict().items():
        assert torch.equal(value, kept[name]), name
    assert "n_averaged" not in net.state_dict()   # the model's own keys, loadable by predict


def test_batch_of_draws_one_view_per_image_when_augmenting_and_the_plain_one_otherwise():
    # view v of image i holds the value 10 * i + v everywhere
    data = torch.tensor([[10.0 * i + v for v in range(4)] for i in range(6)]).view(6, 4, 1, 1, 1).expand(6, 4, 2, 3, 3)
    idx = torch.tensor([5, 0, 3])
    assert torch.equal(batch_of(data[:, 0], idx, torch.Generator(), True), data[idx, 0])   # 4-d: plain indexing
    assert torch.equal(batch_of(data, idx, torch.Generator(), False), data[idx, 0])
    g = torch.Generator().manual_seed(0)
    drawn = [batch_of(data, idx, g, True) for _ in range(50)]
    assert all(x.shape == (3, 2, 3, 3) for x in drawn)
    views = {int(x[j, 0, 0, 0].item()) - 10 * int(i) for x in drawn for j, i in enumerate(idx)}
    assert views == {0, 1, 2, 3}   # every encoding, and always the image's own


@pytest.mark.parametrize("ema_decay", [0.0, 0.5])   # with an average, the best weights are the average's
@pytest.mark.parametrize("val_losses, best_saved_apart", [
    ([4.0, 3.0, 5.0, 6.0], False),   # best at epoch 2, the last one saved before the stop: its "model" serves
    ([2.0, 3.0, 4.0, 5.0], True),    # best at epoch 1: the saved state holds those weights apart
])
def test_a_resumed_fit_restores_the_best_epoch_whether_or_not_it_was_the_last_saved(
        tmp_path, monkeypatch, val_losses, best_saved_apart, ema_decay):
    import genaug.train as train

    x = torch.randint(0, 256, (24, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    y = torch.arange(24) % 2
    kw = dict(epochs=4, batch_size=8, lr=0.01, patience=10, schedule="constant", seed=3, ema_decay=ema_decay)

    def scripted(first_epoch=1, stop_at=None):
        calls = []

        def val_loss(*a, **k):   # the val losses are scripted, so which epoch is best is known
            calls.append(1)
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return val_losses[first_epoch + len(calls) - 2]
        return val_loss

    monkeypatch.setattr(train, "evaluate_loss", scripted())
    whole = _small_net()
    fit_classifier(whole, x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "whole.pt", **kw)
    monkeypatch.setattr(train, "evaluate_loss", scripted(stop_at=3))
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(_small_net(), x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "cut.pt", **kw)
    assert (torch.load(tmp_path / "cut.pt", weights_only=True)["best_state"] is not None) == best_saved_apart
    monkeypatch.setattr(train, "evaluate_loss", scripted(first_epoch=3))
    resumed = _small_net()
    fit_classifier(resumed, x, y, x[:8], y[:8], 2, checkpoint=tmp_path / "cut.pt", **kw)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("name,latent", [("cnn", False), ("resnet34", False), ("densenet121", False), ("cnn", True)])
def test_the_bf16_autocast_path_trains_and_predicts_in_float32(name, latent):
    # The CPU's autocast path (--cpu-amp) makes the same bf16 forward passes as CUDA's, where no GPU runs
    # (training, validation loss, the weight average's batch-norm pass, test-time augmentation), so a
    # dtype that does not meet float32 where it must (losses, probabilities, weights) fails here
    from genaug.models import build_classifier

    g = torch.Generator().manual_seed(0)
    x = (torch.randn(16, 8, 4, 4, generator=g).half() if latent
         else torch.randint(0, 256, (16, 1, 32, 32), generator=g, dtype=torch.uint8))
    y = torch.arange(16) % 2
    model = build_classifier(name, 2, in_channels=x.shape[1], latent=latent)
    seen = set()
    model.register_forward_hook(lambda module, inputs, out: seen.add(out.dtype))
    fit = fit_classifier(model, x, y, x[:8], y[:8], 2, epochs=1, batch_size=8, lr=1e-3, amp=True, ema_decay=0.9)
    probs = predict_probs(model, x, amp=True, tta=1)
    assert seen == {torch.bfloat16}      # autocast was on for every forward pass
    assert all(math.isfinite(fit.history[-1][k]) for k in ("train_loss", "val_loss"))
    assert probs.dtype == torch.float32 and torch.allclose(probs.sum(1), torch.ones(16))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_noise_on_the_cpu_is_the_generators_own_stream():
    # CPU runs draw the very numbers they drew before the GPU path existed, so their results stay as they were
    from genaug.train import gaussian_noise
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(gaussian_noise((2, 4, 3, 3), a, "cpu"), torch.randn((2, 4, 3, 3), generator=b))
    assert torch.equal(a.get_state(), b.get_state())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_noise_on_a_gpu_is_drawn_there_and_repeats_from_the_same_seed():
    from genaug.train import gaussian_noise
    draws = [gaussian_noise((64, 256, 14, 14), torch.Generator().manual_seed(5), "cuda") for _ in range(2)]
    assert draws[0].device.type == "cuda" and torch.equal(draws[0], draws[1])
    assert abs(float(draws[0].std()) - 1) < 0.01
    g = torch.Generator().manual_seed(5)
    first, second = gaussian_noise((8,), g, "cuda"), gaussian_noise((8,), g, "cuda")
    assert not torch.equal(first, second)   # the CPU generator moves on: each step its own noise


@pytest.mark.parametrize("device,amp,cpu_amp,uses", [
    ("cpu", True, False, False),    # the default on a CPU: fp32, as before --cpu-amp
    ("cpu", True, True, True),
    ("cpu", False, True, False),    # run.amp off turns it off everywhere
    ("cuda", True, False, True),    # CUDA's default, whatever cpu_amp says
    ("cuda", False, False, False),
    ("mps", True, True, False),
])
def test_bf16_autocast_is_used_on_cuda_by_default_and_on_a_cpu_only_when_asked(device, amp, cpu_amp, uses):
    from genaug.config import RunConfig
    from genaug.train import autocast, uses_autocast

    assert uses_autocast(RunConfig(amp=amp, cpu_amp=cpu_amp), device) is uses
    if device == "cpu":   # and autocast then computes in bf16 on the CPU
        with autocast(device, uses_autocast(RunConfig(amp=amp, cpu_amp=cpu_amp), device)):
            out = torch.nn.Linear(4, 2)(torch.ones(1, 4))
        assert out.dtype == (torch.bfloat16 if uses else torch.float32)


@pytest.mark.parametrize("command,device,cpu_amp,channels_last,told", [
    ("gan", "cuda", False, True, "note: --channels-last applies on a CPU only; on cuda the GAN trains in fp32 in the "
                                 "contiguous layout, as it always has"),
    ("encode", "cuda:1", True, True, "note: --cpu-amp and --channels-last apply on a CPU only; on cuda the autoencoder "
                                     "trains in fp32 in the contiguous layout, as it always has"),
    ("gan", "cuda", False, False, None),
    ("gan", "cpu", True, True, None),          # where they apply
    ("benchmark", "cuda", True, True, None),   # its classifiers use bf16 autocast on CUDA anyway (run.amp)
])
def test_cpu_only_flags_on_a_gpu_are_said_to_do_nothing(command, device, cpu_amp, channels_last, told):
    """Session 78: --cpu-amp and --channels-last on a GPU left the GAN and the autoencoder as they were, silently."""
    from genaug.config import Config
    from genaug.jobs import cpu_only_flags_note
    cfg = Config()
    cfg.run.cpu_amp, cfg.run.channels_last = cpu_amp, channels_last
    assert cpu_only_flags_note(command, cfg.run, torch.device(device)) == told
