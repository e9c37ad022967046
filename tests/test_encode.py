import csv

import numpy as np
import torch

from genaug.config import Config
from genaug.data import load_data
from genaug.encode import load_latents, train_autoencoder, write_latents
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
