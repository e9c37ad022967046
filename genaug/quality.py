"""Quality report for synthetic images, against real held-out images of the same class.

- FID/KID on domain features: the penultimate layer of a CNN ("judge") trained here
  on the real training split and saved with the run (judge.pt); or, with
  ``--fid-features inception``, torch-fidelity's Inception-v3 pool features (the usual
  FID, which needs torch-fidelity and its weights file on disk or a network). The real-vs-real
  value (two halves of the held-out images) is the floor, and two weak references
  (the same real half blurred, or with shuffled patches) place the number.
- Class fidelity: the judge's accuracy on synthetic images against the requested
  class, beside its accuracy on real held-out images of that class.
- Diversity: mean pairwise SSIM among synthetic vs among real images.
- Memorization: each synthetic image's nearest training image (pixels, features);
  near-copy threshold = a low quantile of held-out real -> train distances.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from genaug.config import Config
from genaug.data import DataBundle
from genaug.data.info import squared_sentence
from genaug.jobs import tell
from genaug.metrics import (fid_bootstrap_std, fid_on_features, kid_on_features, mean_pairwise_ssim, nearest_neighbours)
from genaug.models import SimpleCNN
from genaug.runs import Run, atomic_torch_save, atomic_write_document, load_checkpoint, sha256_file
from genaug.train import as_tensor, batch_indices, chose_channels_last, fit_classifier, predict_probs, to_float

log = logging.getLogger("genaug")


def train_judge(bundle: DataBundle, cfg: Config, run: Run, device) -> SimpleCNN:
    """The real-trained classifier whose features and predictions judge synthetic images (cached in the run)."""
    path = run.path("judge.pt")
    model = SimpleCNN(1, len(bundle.classes))
    if path.is_file():
        model.load_state_dict(load_checkpoint(path, ("model",), "judge checkpoint")["model"])
        return model.to(device).eval()
    fit = fit_classifier(model, as_tensor(bundle.train.images), torch.from_numpy(bundle.train.labels),
                         as_tensor(bundle.val.images), torch.from_numpy(bundle.val.labels), len(bundle.classes),
                         epochs=cfg.gan.judge_epochs, batch_size=32, lr=1e-3, patience=cfg.gan.judge_epochs, augment=True,
                         seed=cfg.run.seed, device=device, desc="judge", ranks=False)  # rank 0 alone judges
    atomic_torch_save({"kind": "judge", "model": model.state_dict(), "classes": bundle.classes,
                       "image_size": cfg.gan.image_size, "history": fit.history,
                       "trained_on": "real training split"}, path)
    return model.to(device).eval()


@torch.no_grad()
def features(model: SimpleCNN, images: torch.Tensor, device) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(to_float(images[i].to(device))).cpu()
                      for i in batch_indices(len(images), 256, False)])


def shuffle_patches(x: torch.Tensor, grid: int = 4, seed: int = 0) -> torch.Tensor:
    """Weak reference: each image cut into grid x grid patches, shuffled."""
    b, c, h, w = x.shape
    ph, pw = h // grid, w // grid
    p = x[:, :, :ph * grid, :pw * grid].reshape(b, c, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5)
    p = p.reshape(b, grid * grid, c, ph, pw)
    perm = torch.randperm(grid * grid, generator=torch.Generator().manual_seed(seed))
    p = p[:, perm].reshape(b, grid, grid, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, ph * grid, pw * grid)
    out = x.clone()
    out[:, :, :ph * grid, :pw * grid] = p
    return out


def to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def class_report(name: str, c: int, synth: np.ndarray, bundle: DataBundle, judge, cfg: Config, run: Run,
                 device, train_u8: torch.Tensor, train_feats: torch.Tensor, fid_features=None) -> dict:
    """FID/KID on ``fid_features`` (default: the judge's); fidelity and memorization always on the judge."""
    # torchvision here, not at the top: it takes seconds to import, and bad input should fail fast
    from torchvision.transforms.functional import gaussian_blur
    from torchvision.utils import make_grid, save_image
    g = cfg.gan
    rng = np.random.default_rng(cfg.run.seed)
    real = bundle.test.images[bundle.test.labels == c]
    real = as_tensor(np.asarray(real)[rng.permutation(len(real))[:g.eval_images]])
    syn = as_tensor(synth[:g.eval_images])
    half = len(real) // 2
    if half < 2:
        return {"error": f"too few held-out real images of {name} ({len(real)}) for a quality report"}
    if len(syn) < 2:   # FID, KID and diversity compare sets; torchmetrics raises on one image
        return {"error": f"too few synthetic images of {name} ({len(syn)}) for a quality report: FID, KID and "
                         "diversity compare sets of images; draw --n 2 or more (the report reads up to "
                         f"{g.eval_images})"}
    other = real[half:2 * half]  # real[:half] is the reference half
    blurred = to_u8(gaussian_blur(to_float(other), kernel_size=9, sigma=2.0))
    shuffled = to_u8(shuffle_patches(to_float(other), seed=cfg.run.seed))
    f_real, f_syn = features(judge, real, device), features(judge, syn, device)
    if fid_features is None:  # FID on the judge's features: reuse the ones just computed
        fid_features = lambda images: features(judge, images, device)  # noqa: E731
        g_real, g_syn = f_real, f_syn
    else:
        g_real, g_syn = fid_features(real), fid_features(syn)
    f_ref, f_other = g_real[:half], g_real[half:2 * half]
    f_blur, f_shuf = fid_features(blurred), fid_features(shuffled)
    n = min(half, len(g_syn))  # the same sample size for every comparison: FID is biased by n
    fid = {"synthetic": fid_on_features(f_ref, g_syn[:n]), "real_vs_real": fid_on_features(f_ref, f_other[:n]),
           "real_blurred": fid_on_features(f_ref, f_blur[:n]), "real_patch_shuffled": fid_on_features(f_ref, f_shuf[:n]),
           "n_per_side": n}
    fid["features_uninformative"] = features_uninformative(fid)
    if g.fid_bootstrap > 0:  # the spread one rerun on other images would show; compare runs against it
        fid["synthetic_bootstrap_std"] = fid_bootstrap_std(f_ref, g_syn[:n], g.fid_bootstrap, cfg.run.seed)
        fid["n_bootstrap"] = g.fid_bootstrap
    kid_s, kid_s_sd = kid_on_features(f_ref, g_syn[:n])
    kid_r, kid_r_sd = kid_on_features(f_ref, f_other[:n])
    kid = {"synthetic": kid_s, "synthetic_std": kid_s_sd, "real_vs_real": kid_r, "real_vs_real_std": kid_r_sd}
    # class fidelity
    p_syn = predict_probs(judge, syn, device=device)
    p_real = predict_probs(judge, real, device=device)
    fidelity = {"synthetic": float((p_syn.argmax(1) == c).float().mean()),
                "real_heldout": float((p_real.argmax(1) == c).float().mean()), "n_synthetic": len(syn)}
    diversity = {"synthetic_mean_pairwise_ssim": mean_pairwise_ssim(to_float(syn), seed=cfg.run.seed),
                 "real_mean_pairwise_ssim": mean_pairwise_ssim(to_float(real), seed=cfg.run.seed)}
    # memorization: nearest training image of any class
    d_syn_px, i_syn_px = nearest_neighbours(to_float(syn), to_float(train_u8))
    d_real_px, _ = nearest_neighbours(to_float(real), to_float(train_u8))
    d_syn_ft, _ = nearest_neighbours(f_syn, train_feats, metric="cosine")
    d_real_ft, _ = nearest_neighbours(f_real, train_feats, metric="cosine")
    q = g.nearcopy_quantile
    thr_px, thr_ft = float(torch.quantile(d_real_px, q)), float(torch.quantile(d_real_ft, q))
    memo = {
        "pixel_rmse_threshold": thr_px, "feature_cosine_threshold": thr_ft, "threshold_quantile": q,
        "synthetic_nn_pixel_rmse": _dist(d_syn_px), "real_heldout_nn_pixel_rmse": _dist(d_real_px),
        "synthetic_nn_feature_cosine": _dist(d_syn_ft), "real_heldout_nn_feature_cosine": _dist(d_real_ft),
        "fraction_near_copies_pixels": float((d_syn_px < thr_px).float().mean()),
        "fraction_near_copies_features": float((d_syn_ft < thr_ft).float().mean()),
    }
    order = torch.argsort(d_syn_px)[:8]
    pairs = torch.cat([to_float(syn[order]), to_float(train_u8[i_syn_px[order]])])
    save_image(make_grid(pairs, nrow=len(order), padding=2), run.path(f"memorization-{name}.png"))
    memo["closest_pairs"] = [{"synthetic_index": int(i), "train_path": bundle.train.paths[int(i_syn_px[i])],
                              "pixel_rmse": float(d_syn_px[i])} for i in order]
    return {"fid": fid, "kid": kid, "fidelity": fidelity, "diversity": diversity, "memorization": memo,
            "n_real_heldout": len(real)}


def features_uninformative(fid: dict) -> bool:
    """Whether the features place neither weak reference (blurred, patch-shuffled real images) clearly
    further from the real reference than other real images: then no FID on them, the synthetic one
    included, says anything (e.g. a feature network trained an epoch on a few images)."""
    return max(fid["real_blurred"], fid["real_patch_shuffled"]) <= 2 * fid["real_vs_real"] + 1e-6


def _dist(d: torch.Tensor) -> dict:
    q = torch.quantile(d, torch.tensor([0.0, 0.05, 0.5, 0.95]))
    return {"min": float(q[0]), "p05": float(q[1]), "median": float(q[2]), "p95": float(q[3])}


INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def inception_extractor(device):
    """torch-fidelity's FID Inception-v3 (2048-d pool features) as a function of uint8 images."""
    from genaug.errors import ConfigError
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).to(device).eval()
    except ModuleNotFoundError:
        raise ConfigError("--fid-features inception needs torch-fidelity (pip install torch-fidelity); "
                          "or use the default domain features") from None
    except Exception as exc:  # no network and no weights file
        raise ConfigError(f"cannot load the FID Inception weights ({str(exc)[:80]}); put {INCEPTION_WEIGHTS} in "
                          "$TORCH_HOME/hub/checkpoints by hand, or use the default domain features") from None

    @torch.no_grad()
    def extract(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(images[i].to(device).repeat(1, 3, 1, 1)).cpu()
                          for i in batch_indices(len(images), 64, False)])
    return extract


def quality_report(run: Run, bundle: DataBundle, samples: dict[str, np.ndarray], cfg: Config, device,
                   inception=None, training_precision: str = "fp32", training_layout: str = "contiguous") -> dict:
    """``inception``: an ``inception_extractor`` for FID/KID (built before training, so a missing
    torch-fidelity fails early); None uses the judge's features. ``training_precision`` and
    ``training_layout``: how the GAN trained (genaug.train.training_precision, training_layout_text), which
    the report states where it is not genaug's default (fp32, contiguous)."""
    if inception is None and cfg.gan.fid_features == "inception":
        inception = inception_extractor(device)
    judge = train_judge(bundle, cfg, run, device)
    train_u8 = as_tensor(bundle.train.images)
    train_feats = features(judge, train_u8, device)
    frac = cfg.gan.train_fraction
    split = ("the real training split" if frac >= 1 else
             f"the GAN's real training images ({frac:g} of the training patients, {len(bundle.train)} images)")
    kind = ("Inception-v3 (torch-fidelity FID weights), 2048-d" if inception else
            f"domain CNN (SimpleCNN) trained on {split}")
    out = {"feature_extractor": {"kind": kind, "judge_file": "judge.pt", "judge_trained_on": split,
                                 "judge_sha256": sha256_file(run.path("judge.pt"))},
           "heldout_split": "test (real, never used for GAN training)", "synthetic_data": bundle.synthetic,
           "training_precision": training_precision, "training_layout": training_layout,
           "resize": cfg.data.resize, "classes": {}}
    for name, synth in samples.items():
        c = bundle.classes.index(name)
        out["classes"][name] = class_report(name, c, synth, bundle, judge, cfg, run, device, train_u8, train_feats,
                                            inception)
    atomic_write_document(run.path("quality.md"), format_quality(out, bundle))
    tell(format_quality(out, bundle))
    return out


def _small(x: float, decimals: int) -> str:
    """``decimals`` decimals, or two significant digits below 10^-(decimals-1): features of small magnitude
    (a feature network trained briefly) give FIDs and KIDs that fixed decimals would all show as 0.00 (or
    -0.0000), hiding how they compare."""
    return f"{x:.{decimals}f}" if x == 0 or abs(x) >= 10.0 ** (1 - decimals) else f"{x:.2g}"


def fid_text(x: float) -> str:
    """A FID as the reports write it (genaug pool beside each GAN run too)."""
    return _small(x, 2)


def _kid(x: float) -> str:
    return _small(x, 4)


def _layout_sentence(m: dict) -> str:
    """What quality.md says of a GAN that --channels-last trained: its layout changes the numbers it trains
    to (docs/PERFORMANCE.md (t)), so a reader comparing two runs' FIDs should see it."""
    if not chose_channels_last(m):
        return ""
    if m.get("training_precision", "fp32") == "fp32":
        return (" The GAN trained in the channels-last memory layout (--channels-last); it sampled, and the judge "
                "trained, in the contiguous one.")
    return " Its fp32 epochs trained in the channels-last memory layout too (--channels-last)."


def format_quality(m: dict, bundle: DataBundle) -> str:
    lines = ["# Synthetic image quality", ""]
    if bundle.synthetic:
        lines += ["**Data: built-in demo phantoms, synthetic, not real X-rays.**", ""]
    lines += [f"FID/KID features: {m['feature_extractor']['kind']}. Fidelity and memorization features: a CNN "
              f"trained here on {m['feature_extractor'].get('judge_trained_on', 'the real training split')} "
              "(judge.pt). Reference: real held-out "
              "(test) images of the same class. Lower FID/KID is closer; read the synthetic value against "
              "the real-vs-real floor and the weak references."
              + (f" The GAN trained in {m['training_precision']} on the CPU (--cpu-amp); it sampled, and the judge "
                 "trained, in fp32." if m.get("training_precision", "fp32") != "fp32" else "")
              + _layout_sentence(m) + squared_sentence(m.get("resize", "squash")), "",
              "| class | FID synthetic | FID real-vs-real | FID blurred real | FID patch-shuffled | KID synthetic | "
              "KID real-vs-real | fidelity synthetic | fidelity real | SSIM among synthetic | SSIM among real | "
              "near-copies (pixels) | near-copies (features) |",
              "|---" * 13 + "|"]
    for name, r in m["classes"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} |" + " |" * 11)
            continue
        f, k, fi, d, mm = r["fid"], r["kid"], r["fidelity"], r["diversity"], r["memorization"]
        fid_syn = fid_text(f['synthetic']) + (f" ± {fid_text(f['synthetic_bootstrap_std'])}" if "synthetic_bootstrap_std" in f else "")
        lines.append(f"| {name} | {fid_syn} | {fid_text(f['real_vs_real'])} | {fid_text(f['real_blurred'])} | "
                     f"{fid_text(f['real_patch_shuffled'])} | {_kid(k['synthetic'])} ± {_kid(k['synthetic_std'])} | "
                     f"{_kid(k['real_vs_real'])} ± {_kid(k['real_vs_real_std'])} | "
                     f"{fi['synthetic']:.3f} | {fi['real_heldout']:.3f} | {d['synthetic_mean_pairwise_ssim']:.3f} | "
                     f"{d['real_mean_pairwise_ssim']:.3f} | {mm['fraction_near_copies_pixels']:.3f} | "
                     f"{mm['fraction_near_copies_features']:.3f} |")
    for name, r in m["classes"].items():
        if r.get("fid", {}).get("features_uninformative"):
            f = r["fid"]
            lines += ["", f"**{name}: the FID features do not tell real images from blurred or patch-shuffled ones "
                      f"(FID {fid_text(f['real_blurred'])} and {fid_text(f['real_patch_shuffled'])}, against {fid_text(f['real_vs_real'])} "
                      "between real halves), so this class's FID and KID say nothing about the synthetic images. "
                      "Train the feature network longer (gan.judge_epochs) or on more images.**"]
    first = next((r for r in m["classes"].values() if "fid" in r), {})
    n_boot = first.get("fid", {}).get("n_bootstrap")
    lines += ["", (f"FID synthetic ± : standard deviation of FID over {n_boot} resamplings (with replacement) of "
                   "both image sets: how much the figure depends on which images were drawn. Retraining the GAN "
                   "or the feature network moves it further: two runs whose FIDs differ by less than about 2.8 times "
                   "this (1.96·√2, for two independent draws) could differ by the draw of images alone. " if n_boot else "") +
              "KID ± : standard deviation over KID's random subsets (100 images a side, or half the images "
              "where a class has 100 or fewer per side).", "",
              # found in session 86: the table gave SSIM 0.799 among synthetic against 0.568 among real with no
              # word on which way is better
              "Fidelity: the share of images the judge assigns to the class they are of, synthetic against real "
              "held-out ones (how often the judge is right about real images bounds what it can say of synthetic ones). SSIM "
              "among: the mean structural similarity of 300 random pairs within each set; synthetic images more alike "
              "than real ones (a higher figure) are less diverse, toward a GAN that draws a few images over and over "
              "(mode collapse).", "", "Near-copy: closer to a training image than the "
              f"{next(iter(m['classes'].values())).get('memorization', {}).get('threshold_quantile', 0.01):.0%} "
              "quantile of real held-out images are to their nearest training image. Closest pairs: "
              "memorization-<CLASS>.png (synthetic above, nearest training image below)."]
    return "\n".join(lines) + "\n"
