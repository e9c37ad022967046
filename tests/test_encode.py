import csv

import numpy as np
import pytest
import torch

from genaug.config import Config
from genaug.data import load_data
from genaug.encode import encode_views, gather_rows, load_latents, train_autoencoder, write_latents
from genaug.errors import ConfigError
from genaug.models import ConvAutoencoder
from genaug.runs import load_checkpoint, new_run


def test_encode_save_load_decode_round_trip_and_manifest_order(tmp_path):
    bundle = load_data("demo", 32, demo_train=60)
    ae = ConvAutoencoder(32, 8).eval()
    meta = write_latents(ae, bundle, tmp_path / "lat", "cpu", overwrite=False, source={"data": "demo"})
    assert meta["latent_shape"] == [8, 2, 2] and meta["counts"]["train"] == len(bundle.train)
    back = load_latents(tmp_path / "lat")
    lat, labels = back["splits"]["test"]
    assert lat.dtype == np.float16 and np.array_equal(labels, bundle.test.labels)
    x = torch.from_numpy(np.asarray(bundle.test.images[:4])).float().div(255).unsqueeze(1)
    with torch.no_grad():
        direct = ae.decode(ae.encode(x))
        stored = ae.decode(torch.from_numpy(np.asarray(lat[:4])).float())
    assert torch.allclose(direct, stored, atol=5e-3)
    rows = list(csv.DictReader((tmp_path / "lat" / "manifest.csv").open()))
    assert [r["path"] for r in rows if r["split"] == "val"] == bundle.val.paths
    assert len(rows) == sum(len(s) for s in bundle.splits.values())
    # an existing latent set is kept unless overwrite
    before = (tmp_path / "lat" / "train.npy").stat().st_mtime_ns
    write_latents(ConvAutoencoder(32, 8), bundle, tmp_path / "lat", "cpu", overwrite=False, source={})
    assert (tmp_path / "lat" / "train.npy").stat().st_mtime_ns == before


def test_autoencoder_resume_continues(tmp_path):
    cfg = Config()
    cfg.encode.image_size, cfg.encode.latent_channels, cfg.encode.epochs, cfg.encode.batch_size = 32, 8, 1, 16
    bundle = load_data("demo", 32, demo_train=48)
    run = new_run(tmp_path, "encode", "t", cfg.to_dict())
    h1 = train_autoencoder(ConvAutoencoder(32, 8), bundle, cfg, run, "cpu")
    ckpt = load_checkpoint(run.path("checkpoint.pt"), ("model", "epoch"))
    assert ckpt["epoch"] == 1 and len(h1) == 1
    cfg.encode.epochs = 3
    h = train_autoencoder(ConvAutoencoder(32, 8), bundle, cfg, run, "cpu", start=ckpt)
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert h[-1]["train_mse"] < h[0]["train_mse"]
    run.close()


@pytest.mark.parametrize("device,amp,cpu_amp,bf16", [("cpu", True, True, True), ("cpu", True, False, False),
                                                      ("cpu", False, True, False), ("cuda", True, True, False)])
def test_the_gan_and_autoencoder_train_in_bf16_on_a_cpu_with_cpu_amp_only(device, amp, cpu_amp, bf16):
    from genaug.train import trains_in_cpu_bf16
    cfg = Config()
    cfg.run.amp, cfg.run.cpu_amp = amp, cpu_amp
    assert trains_in_cpu_bf16(cfg.run, device) is bf16


@pytest.mark.parametrize("device,cpu_amp,channels_last,wanted", [
    ("cpu", False, False, torch.contiguous_format),   # fp32 as every run before session 77, so reruns agree
    ("cpu", False, True, torch.channels_last),        # --channels-last: 1.1-1.4x on a Xeon (PERFORMANCE (s))
    ("cpu", True, False, torch.channels_last),        # bf16: oneDNN's bf16 convolutions want it
    ("cuda", False, True, torch.contiguous_format)])  # unmeasured on CUDA: unchanged there
def test_the_gan_and_autoencoder_train_channels_last_in_bf16_or_when_asked_on_a_cpu(device, cpu_amp, channels_last,
                                                                                  wanted):
    from genaug.train import training_layout
    cfg = Config()
    cfg.run.cpu_amp, cfg.run.channels_last = cpu_amp, channels_last
    assert training_layout(cfg.run, device) == wanted


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_autoencoder_trains_in_the_layout_asked_for(tmp_path, channels_last):
    cfg = Config()
    cfg.encode.image_size, cfg.encode.latent_channels, cfg.encode.epochs, cfg.encode.batch_size = 32, 8, 1, 16
    cfg.run.channels_last = channels_last
    run = new_run(tmp_path, "encode", "t", cfg.to_dict())
    model = ConvAutoencoder(32, 8)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    seen = set()   # whether a convolution's weights and activations were channels-last in each training batch

    def layout_of(m, args):
        if m.training:
            seen.add((m.weight.is_contiguous(memory_format=torch.channels_last),
                      args[0].is_contiguous(memory_format=torch.channels_last)))
    conv.register_forward_pre_hook(layout_of)
    history = train_autoencoder(model, load_data("demo", 32, demo_train=32), cfg, run, "cpu")
    run.close()
    assert seen == {(channels_last, channels_last)}
    assert np.isfinite(history[0]["train_mse"]) and not history[0].get("bf16")
    assert history[0]["channels_last"] is channels_last   # session 78: the run records it


@pytest.mark.parametrize("flags,told", [
    ([], "contiguous"), ([(False, False)], "contiguous"), ([(False, True), (False, True)], "channels-last"),
    ([(True, True), (False, False)], "channels-last for 1 of 2 epochs, contiguous for the rest"),
    # histories from before the key: bf16 epochs trained channels-last, fp32 ones contiguous
    ([(True, None), (False, None)], "channels-last for 1 of 2 epochs, contiguous for the rest"),
])
def test_training_layout_text_counts_the_epochs_of_each(flags, told):
    from genaug.train import training_layout_text
    history = [{"epoch": i + 1, "bf16": bf16, **({} if cl is None else {"channels_last": cl})}
               for i, (bf16, cl) in enumerate(flags)]
    assert training_layout_text(history) == told


def test_training_layout_text_takes_session_77s_channels_last_runs_from_their_setting():
    """Their histories do not say; --channels-last (which a resume may not change) put their fp32 epochs so."""
    from genaug.train import training_layout_text
    assert training_layout_text([{"epoch": 1, "bf16": False}, {"epoch": 2}], True) == "channels-last"
    assert training_layout_text([{"epoch": 1, "bf16": False, "channels_last": False}], True) == "contiguous"


@pytest.mark.parametrize("precision,layout,summary_says", [
    ("fp32", "contiguous", ""),
    ("fp32", "channels-last", " (fp32 in the channels-last memory layout, --channels-last; evaluated and encoded "
                              "in the contiguous layout)"),
    ("bf16 autocast", "channels-last", " (bf16 autocast; evaluated and encoded in fp32)"),   # bf16's own layout
    ("bf16 autocast for 1 of 2 epochs, fp32 for the rest", "channels-last",
     " (bf16 autocast for 1 of 2 epochs, fp32 for the rest; its fp32 epochs in the channels-last memory layout, "
     "--channels-last; evaluated and encoded in fp32, contiguous)"),
    ("bf16 autocast for 1 of 2 epochs, fp32 for the rest", "channels-last for 1 of 2 epochs, contiguous for the rest",
     " (bf16 autocast for 1 of 2 epochs, fp32 for the rest; evaluated and encoded in fp32)"),
    (None, None, ""),   # a reused autoencoder: no epochs here
])
def test_the_autoencoder_summary_says_how_it_trained(precision, layout, summary_says):
    from genaug.encode import _how_trained
    assert _how_trained({"training_precision": precision, "training_layout": layout}) == summary_says


@pytest.mark.parametrize("flags,told", [([], "fp32"), ([True, True], "bf16 autocast"),
                                        ([True, False, False], "bf16 autocast for 1 of 3 epochs, fp32 for the rest"),
                                        ([False, False], "fp32")])
def test_training_precision_counts_the_epochs_of_each(flags, told):
    from genaug.train import training_precision
    assert training_precision([{"epoch": i + 1, "bf16": f} for i, f in enumerate(flags)]) == told
    assert training_precision([{"epoch": 1}]) == "fp32"   # a history written before the key existed


def test_autoencoder_under_cpu_amp_trains_in_bf16_resumes_in_fp32_and_saves_plain_weights(tmp_path):
    from genaug.train import training_precision
    cfg = Config()
    cfg.encode.image_size, cfg.encode.latent_channels, cfg.encode.epochs, cfg.encode.batch_size = 32, 8, 2, 16
    cfg.run.cpu_amp = True
    bundle = load_data("demo", 32, demo_train=48)
    run = new_run(tmp_path, "encode", "t", cfg.to_dict())
    model = ConvAutoencoder(32, 8)
    seen = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append(o.dtype) if m.training else None)
    h = train_autoencoder(model, bundle, cfg, run, "cpu")
    assert [r["bf16"] for r in h] == [True, True] and set(seen) == {torch.bfloat16}
    assert all(np.isfinite(r["train_mse"]) and np.isfinite(r["val_psnr"]) for r in h)
    assert h[-1]["train_mse"] < h[0]["train_mse"]
    assert all(p.is_contiguous() for p in model.state_dict().values())   # safetensors takes no other
    ckpt = load_checkpoint(run.path("checkpoint.pt"), ("model", "epoch"))
    cfg.encode.epochs, cfg.run.cpu_amp = 3, False     # resumed with --no-cpu-amp
    h = train_autoencoder(ConvAutoencoder(32, 8), bundle, cfg, run, "cpu", start=ckpt)
    assert [r["bf16"] for r in h] == [True, True, False]
    assert training_precision(h) == "bf16 autocast for 2 of 3 epochs, fp32 for the rest"
    run.close()


def test_views_are_augmented_encodings_of_train_and_val_only(tmp_path):
    bundle = load_data("demo", 32, demo_train=60)
    ae = ConvAutoencoder(32, 8).eval()
    meta = write_latents(ae, bundle, tmp_path / "lat", "cpu", overwrite=False, source={}, views=3, seed=5)
    assert meta["views"] == 3 and meta["view_splits"] == ["train", "val"]
    back = load_latents(tmp_path / "lat")
    assert sorted(back["views"]) == ["train", "val"] and not (tmp_path / "lat" / "test_views.npy").exists()
    views = back["views"]["train"]
    plain = back["splits"]["train"][0]
    assert views.shape == (len(bundle.train), 3, 8, 2, 2) and views.dtype == np.float16
    # each view is the encoding of an augmented image: unlike the plain latent and unlike the other views
    assert not np.allclose(views[:, 0], plain) and not np.allclose(views[:, 0], views[:, 1])
    # the same seed draws the same augmentations
    again = encode_views(ae, bundle.train.images, "cpu", 3, seed=5)
    assert np.array_equal(again, np.asarray(views))
    # an existing latent set with another number of views is not silently reused
    with pytest.raises(ConfigError, match="3 augmented views, not 0"):
        write_latents(ae, bundle, tmp_path / "lat", "cpu", overwrite=False, source={})
    write_latents(ae, bundle, tmp_path / "lat", "cpu", overwrite=True, source={})
    assert "views" not in load_latents(tmp_path / "lat")


def test_corrupt_views_file_is_a_clear_error(tmp_path):
    from genaug.errors import CheckpointError
    bundle = load_data("demo", 32, demo_train=60)
    write_latents(ConvAutoencoder(32, 8).eval(), bundle, tmp_path / "lat", "cpu", overwrite=False, source={}, views=1)
    np.save(tmp_path / "lat" / "val_views.npy", np.zeros((2, 1, 8, 2, 2), np.float16))
    with pytest.raises(CheckpointError, match="val_views.npy have shape"):
        load_latents(tmp_path / "lat")


@pytest.mark.parametrize("chunk", [0, 1, 3, 256])
@pytest.mark.parametrize("n_rows", [0, 7])
def test_gather_rows_from_a_memory_map_equals_fancy_indexing(tmp_path, chunk, n_rows):
    src = np.lib.format.open_memmap(tmp_path / "views.npy", mode="w+", dtype=np.float16, shape=(10, 2, 3, 2, 2))
    src[:] = np.arange(src.size, dtype=np.float16).reshape(src.shape)
    src.flush()
    src = np.load(tmp_path / "views.npy", mmap_mode="r")      # read-only, as load_latents opens it
    rows = np.array([9, 0, 4, 4, 2, 7, 1][:n_rows], dtype=np.int64)
    dst = np.full((n_rows, 3, 3, 2, 2), -1, dtype=np.float16)   # the benchmark fills a slice of a wider array
    gather_rows(dst[:, 1:], src, rows, chunk=chunk)
    np.testing.assert_array_equal(dst[:, 1:], src[rows])
    assert (dst[:, 0] == -1).all()


def test_autoencoder_of_an_encode_run_is_its_own_or_the_one_it_reused(tmp_path):
    from genaug.encode import autoencoder_of
    from genaug.errors import CheckpointError
    own, reusing, reused = tmp_path / "own", tmp_path / "reusing", tmp_path / "ae.pt"
    own.mkdir(), reusing.mkdir()
    (own / "autoencoder.pt").write_bytes(b"x")
    (own / "config.yaml").write_text(f"encode:\n  checkpoint: {reused}\n")   # its own file comes first
    reused.write_bytes(b"x")
    (reusing / "config.yaml").write_text(f"encode:\n  checkpoint: {reused}\n")
    assert autoencoder_of(own) == own / "autoencoder.pt"
    assert autoencoder_of(reusing) == reused
    reused.unlink()
    with pytest.raises(CheckpointError, match=r"the one it reused \(.*ae\.pt\) is gone.*--no-save-models"):
        autoencoder_of(reusing)
