import numpy as np
import pytest
import torch

from genaug.config import Config, config_from_dict
from genaug.errors import ConfigError, TrainingDiverged
from genaug.gan import (GanState, generator_payload, load_generator, sample_class, train_gan_model,
                        train_step)
from genaug.runs import atomic_torch_save, load_checkpoint, new_run


def tiny_cfg(epochs=1):
    cfg = Config()
    cfg.gan.ngf = cfg.gan.ndf = 8
    cfg.gan.epochs, cfg.gan.batch_size = epochs, 8
    cfg.run.device = "cpu"
    return cfg


@pytest.mark.parametrize("conditioning", ["channels", "acgan"])
def test_one_step_changes_both_networks(conditioning):
    cfg = tiny_cfg()
    cfg.gan.conditioning = conditioning
    st = GanState(cfg, 2)
    before_g = [p.clone() for p in st.G.parameters()]
    before_d = [p.clone() for p in st.D.parameters()]
    x = torch.rand(8, 1, 64, 64) * 2 - 1
    train_step(st, x, torch.arange(8) % 2, cfg, torch.Generator().manual_seed(0))
    assert any(not torch.equal(a, b) for a, b in zip(before_g, st.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, st.D.parameters()))


def test_resume_continues_from_epoch_k_and_sampling_is_deterministic(tmp_path):
    torch.manual_seed(0)  # the networks' initial weights come from the global generator; fix them
    imgs = np.random.default_rng(0).integers(0, 255, (32, 64, 64), dtype=np.uint8)
    labs = np.arange(32) % 2
    cfg = tiny_cfg(epochs=1)
    run = new_run(tmp_path, "gan", "t", cfg.to_dict())
    st = train_gan_model("conditional", imgs, labs, 2, cfg, run, ["A", "B"], "cpu", None)
    assert st.epoch == 1
    ckpt = load_checkpoint(run.path("checkpoint-conditional.pt"), ("G", "epoch"))
    cfg2 = tiny_cfg(epochs=3)
    st2 = train_gan_model("conditional", imgs, labs, 2, cfg2, run, ["A", "B"], "cpu", ckpt)
    assert st2.epoch == 3 and [h["epoch"] for h in st2.history] == [1, 2, 3]
    assert st2.step == 3 * st.step
    atomic_torch_save(generator_payload(st2, cfg2, ["A", "B"], "conditional"), tmp_path / "g.pt")
    G, payload = load_generator(tmp_path / "g.pt")
    a = sample_class(G, payload, "A", 6, seed=1, device="cpu")
    assert a.shape == (6, 64, 64) and a.dtype == np.uint8
    assert np.array_equal(a, sample_class(G, payload, "A", 6, seed=1, device="cpu"))
    assert not np.array_equal(a, sample_class(G, payload, "B", 6, seed=1, device="cpu"))
    with pytest.raises(ConfigError):
        sample_class(G, payload, "C", 6, seed=1, device="cpu")
    run.close()


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    imgs = np.random.default_rng(0).integers(0, 255, (16, 64, 64), dtype=np.uint8)
    cfg = tiny_cfg(epochs=1)
    run = new_run(tmp_path, "gan", "t", cfg.to_dict())
    train_gan_model("A", imgs, None, 0, cfg, run, ["A"], "cpu", None)
    good = run.path("checkpoint-A.pt").read_bytes()
    import genaug.gan as gan_mod
    monkeypatch.setattr(gan_mod, "train_step", lambda *a, **k: (float("nan"), 1.0))
    ckpt = load_checkpoint(run.path("checkpoint-A.pt"), ("G",))
    with pytest.raises(TrainingDiverged, match="only what finished before it is kept"):
        train_gan_model("A", imgs, None, 0, tiny_cfg(epochs=2), run, ["A"], "cpu", ckpt)
    assert run.path("checkpoint-A.pt").read_bytes() == good
    run.close()


def test_ema_follows_recent_weights_in_short_runs():
    cfg = tiny_cfg()
    cfg.gan.ema_start = 0
    st = GanState(cfg, 0)
    for p in st.G.parameters():          # pretend training moved every weight to 1.0
        torch.nn.init.constant_(p, 1.0)
    for _ in range(300):
        st.step += 1
        st.update_ema(cfg.gan.ema_decay, cfg.gan.ema_start)
    # with a fixed 0.999 about 74% of the initial weights would remain after 300 steps
    w = next(st.G_ema.parameters())
    assert (w - 1.0).abs().max() < 0.05


def test_acgan_discriminator_reads_the_class_from_pixels_only():
    from genaug.models import Discriminator
    D = Discriminator(8, 64, n_classes=3, aux=True)
    assert D.features[0].in_channels == 1            # no label planes: the class must come from the image
    logit, cls = D(torch.rand(5, 1, 64, 64))
    assert logit.shape == (5,) and cls.shape == (5, 3)
    assert Discriminator(8, 64, n_classes=3).features[0].in_channels == 4


def test_acgan_class_loss_teaches_the_head_on_real_images():
    """A few D steps on two visibly different classes: the class head learns to tell them apart."""
    cfg = tiny_cfg()
    cfg.gan.conditioning = "acgan"
    torch.manual_seed(0)
    st = GanState(cfg, 2)
    labels = torch.arange(16) % 2
    real = torch.where(labels.view(-1, 1, 1, 1) == 1, 0.8, -0.8) + 0.05 * torch.randn(16, 1, 64, 64)
    gen = torch.Generator().manual_seed(0)

    def class_loss():   # in training mode, as D sees batches while it learns
        with torch.no_grad():
            _, cls = st.D(real)
        return torch.nn.functional.cross_entropy(cls, labels).item(), (cls.argmax(1) == labels).float().mean()

    before, _ = class_loss()
    for _ in range(15):
        train_step(st, real, labels, cfg, gen)
    after, accuracy = class_loss()
    assert after < before / 3 and accuracy == 1.0


def test_negative_aux_weight_is_a_config_error():
    with pytest.raises(ConfigError, match="gan.aux_weight"):
        config_from_dict({"gan": {"conditioning": "acgan", "aux_weight": -0.5}})


def test_unknown_conditioning_is_a_config_error():
    with pytest.raises(ConfigError, match="gan.conditioning"):
        config_from_dict({"gan": {"conditioning": "projection"}})


def test_sampling_in_batches_gives_the_images_one_draw_gave(tmp_path):
    """`gan sample` draws and writes a batch at a time (a million images never in memory at once); the
    images must stay those one draw of all noise gave, which runs and papers made before have used."""
    from PIL import Image

    from genaug.gan import sample_to_dir
    torch.manual_seed(0)
    cfg = tiny_cfg()
    st = GanState(cfg, 2)
    st.G.eval()
    atomic_torch_save(generator_payload(st, cfg, ["A", "B"], "conditional"), tmp_path / "g.pt")
    G, payload = load_generator(tmp_path / "g.pt")
    n, c = 300, 1   # past one batch of 256
    with torch.no_grad():   # the earlier code: all n noise vectors drawn at once
        z = torch.randn(n, payload["nz"], generator=torch.Generator().manual_seed(5 * 1_000_003 + c))
        want = torch.cat([G(z[s:s + 256], torch.full((len(z[s:s + 256]),), c)) for s in range(0, n, 256)])
    want = ((want + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    assert np.array_equal(sample_class(G, payload, "B", n, seed=5, device="cpu"), want)
    rows = sample_to_dir(tmp_path / "g.pt", "all", n, 5, tmp_path / "out", "cpu")
    assert [r[3] for r in rows] == list(range(n)) * 2   # indices start again for each class
    assert len(list((tmp_path / "out" / "B").glob("*.png"))) == n
    for i in (0, 255, 256, 299):
        got = np.asarray(Image.open(tmp_path / "out" / "B" / f"synthetic_B_5_{i:05d}.png"))
        assert np.array_equal(got, want[i])


def test_a_per_class_generator_asked_for_another_class_names_that_class_s_generator(tmp_path):
    """Found in session 55: `gan sample --checkpoint generator-NORMAL.pt --class PNEUMONIA` was told
    "unknown class 'PNEUMONIA'; the data has: NORMAL", though the data has both."""
    from genaug.gan import sample_to_dir
    cfg = tiny_cfg()
    for c in ("A", "B"):
        atomic_torch_save(generator_payload(GanState(cfg, 0), cfg, ["A", "B"], c), tmp_path / f"generator-{c}.pt")
    with pytest.raises(ConfigError) as told:
        sample_to_dir(tmp_path / "generator-A.pt", "b", 2, 0, tmp_path / "out", "cpu")
    assert str(told.value) == (f"{tmp_path / 'generator-A.pt'} draws A only (one generator per class, --per-class); "
                               f"B's is {tmp_path / 'generator-B.pt'}, or --class A")
    with pytest.raises(ConfigError, match="unknown class 'C'; the data has: A, B"):
        sample_to_dir(tmp_path / "generator-A.pt", "C", 2, 0, tmp_path / "out", "cpu")
    # 'all', the default, is the one class it draws
    assert [r[1] for r in sample_to_dir(tmp_path / "generator-A.pt", "all", 2, 0, tmp_path / "out", "cpu")] == ["A", "A"]
    assert not (tmp_path / "out" / "B").exists()


def test_genaug_gan_holds_only_the_images_its_quality_report_reads(tiny, tmp_path, monkeypatch):
    """`genaug gan --n N` kept all N images of each class in memory until its quality report, which reads
    the first eval_images of them: N = 100000 at 64 px was 400 MB a class. It now writes them a batch at
    a time and keeps only those; a finished run given again reads back only those."""
    from PIL import Image

    import genaug.quality as quality
    from genaug.config import load_config
    from genaug.gan import run_gan
    from genaug.runs import read_manifest
    seen = []
    report = quality.quality_report

    def spy(run, bundle, samples, *args, **kwargs):
        seen.append({c: v.copy() for c, v in samples.items()})
        return report(run, bundle, samples, *args, **kwargs)
    monkeypatch.setattr(quality, "quality_report", spy)
    cfg = load_config(str(tiny), {"gan": {"n": 40, "eval_images": 12}, "run": {"out_root": str(tmp_path / "o")}})
    run_dir = run_gan(cfg, "PNEUMONIA")
    written = sorted((run_dir / "synthetic" / "PNEUMONIA").glob("*.png"))
    assert len(written) == 40 and read_manifest(run_dir)["synthetic_images"] == 40
    first = np.stack([np.asarray(Image.open(p)) for p in written[:12]])
    assert seen[0]["PNEUMONIA"].shape == (12, 64, 64) and np.array_equal(seen[0]["PNEUMONIA"], first)
    run_gan(cfg, resume=str(run_dir))   # finished: its images are kept, the report made again
    assert np.array_equal(seen[1]["PNEUMONIA"], first)
    assert sorted((run_dir / "synthetic" / "PNEUMONIA").glob("*.png")) == written


def test_gan_under_cpu_amp_trains_in_bf16_resumes_in_fp32_and_samples_in_fp32(tmp_path):
    """`genaug gan --cpu-amp` (session 76): G and D compute in bf16 while they train, the losses, weights
    and the EMA generator that samples stay fp32, and a run resumed with --no-cpu-amp counts each kind."""
    from genaug.train import training_precision
    torch.manual_seed(0)
    imgs = np.random.default_rng(0).integers(0, 255, (32, 64, 64), dtype=np.uint8)
    labs = np.arange(32) % 2
    cfg = tiny_cfg(epochs=2)
    cfg.gan.conditioning, cfg.run.cpu_amp = "acgan", True
    run = new_run(tmp_path, "gan", "t", cfg.to_dict())
    seen = set()

    def record(module, inputs, out):   # (network, training or sampling, output dtype)
        if type(module).__name__ in ("Generator", "Discriminator"):
            seen.add((type(module).__name__, module.training, (out[0] if isinstance(out, tuple) else out).dtype))
    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        st = train_gan_model("conditional", imgs, labs, 2, cfg, run, ["A", "B"], "cpu", None)
    finally:
        hook.remove()
    # the epoch's sample grid comes from the EMA generator in eval mode, in fp32
    assert seen == {("Generator", True, torch.bfloat16), ("Discriminator", True, torch.bfloat16),
                    ("Generator", False, torch.float32)}
    assert [h["bf16"] for h in st.history] == [True, True]
    assert all(np.isfinite(h["loss_d"]) and np.isfinite(h["loss_g"]) for h in st.history)
    assert all(p.dtype == torch.float32 for m in (st.G, st.D, st.G_ema) for p in m.parameters())
    # the sampling generator keeps its layout: its images do not depend on how G and D trained
    assert all(p.is_contiguous() for p in st.G_ema.state_dict().values())
    ckpt = load_checkpoint(run.path("checkpoint-conditional.pt"), ("G", "epoch"))
    cfg2 = config_from_dict(cfg.to_dict())
    cfg2.gan.epochs, cfg2.run.cpu_amp = 3, False     # resumed with --no-cpu-amp
    st2 = train_gan_model("conditional", imgs, labs, 2, cfg2, run, ["A", "B"], "cpu", ckpt)
    assert [h["bf16"] for h in st2.history] == [True, True, False]
    assert training_precision(st2.history) == "bf16 autocast for 2 of 3 epochs, fp32 for the rest"
    atomic_torch_save(generator_payload(st2, cfg2, ["A", "B"], "conditional"), tmp_path / "g.pt")
    G, payload = load_generator(tmp_path / "g.pt")
    a = sample_class(G, payload, "A", 6, seed=1, device="cpu")
    assert a.shape == (6, 64, 64) and a.dtype == np.uint8
    run.close()


@pytest.mark.parametrize("precision,layout,says", [
    ("fp32", "channels-last", " The GAN trained in the channels-last memory layout (--channels-last); it sampled, "
                              "and the judge trained, in the contiguous one."),
    ("bf16 autocast for 1 of 2 epochs, fp32 for the rest", "channels-last",
     " Its fp32 epochs trained in the channels-last memory layout too (--channels-last)."),
    ("bf16 autocast", "channels-last", ""),   # bf16's own layout, said by the precision sentence's --cpu-amp
    ("fp32", "contiguous", ""), (None, None, ""),   # a run from before either key
])
def test_the_quality_report_names_the_layout_channels_last_chose(precision, layout, says):
    from genaug.quality import _layout_sentence
    m = {k: v for k, v in (("training_precision", precision), ("training_layout", layout)) if v is not None}
    assert _layout_sentence(m) == says


def test_a_gan_asked_for_one_image_a_class_reports_why_it_has_no_fid(tiny, tmp_path):
    """Found in session 80: `genaug gan --n 1` trained, wrote its image, then died in a traceback
    from torchmetrics ("More than one sample is required ... to compute FID"); the run had no report."""
    from test_cli import genaug, only_run
    r = genaug("gan", "--profile", str(tiny), "--class", "PNEUMONIA", "--n", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    run_dir = only_run(tmp_path / "o", "gan")
    assert len(list((run_dir / "synthetic" / "PNEUMONIA").glob("*.png"))) == 1
    quality = (run_dir / "quality.md").read_text()
    assert "| PNEUMONIA | too few synthetic images of PNEUMONIA (1) for a quality report" in quality
    assert "--n 2" in quality
