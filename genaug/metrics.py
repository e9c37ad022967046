"""Metrics. Classification metrics, FID/KID, SSIM/PSNR come from torchmetrics; FID/KID take
features, not images, so the backbone can be swapped. Bootstrap intervals (over test images, and
over training seeds and test images together), the exact McNemar test and its several-seed form
(an exact sign-flip test over test images) are the small pieces torchmetrics does not provide.

torchmetrics and scipy are imported in the functions that use them: together they take seconds to
import, and a command that fails on bad input, or only rewrites a report, should answer at once
(bench/startup.py, docs/PERFORMANCE.md (h)).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

# ----------------------------------------------------------------------------- classification


def predictions(probs: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """Binary: positive (class 1) when p1 >= threshold (0.5 default); multiclass: argmax."""
    if probs.shape[1] == 2:
        return (probs[:, 1] >= (0.5 if threshold is None else threshold)).long()
    return probs.argmax(dim=1)


def choose_threshold(y: torch.Tensor, probs: torch.Tensor, midpoint: bool = False) -> float:
    """Binary decision threshold maximising Youden's J (sensitivity + specificity - 1) on validation: the
    highest score at which J is greatest (an image at that score or above is called positive).

    ``midpoint``: halfway from that score down to the next lower one instead, which separates the chosen
    images as well. Why: the score itself is the lowest positive image counted, so a new positive image
    that scores a little under it is missed; with a few labelled images (genaug threshold) the gap is wide
    and its middle holds better on images not yet seen (bench/site_threshold.py: +1.1 to +1.3 points of
    accuracy at 20 labelled images, docs/STATUS.md session 66). The benchmark keeps the score itself, so
    recorded cells stay comparable."""
    if probs.shape[1] != 2 or len(torch.unique(y)) < 2:
        return 0.5
    import torchmetrics.functional.classification as tmc
    fpr, tpr, thr = tmc.binary_roc(probs[:, 1], y, thresholds=None)   # thr: distinct scores, descending
    j = tpr - fpr
    best = int(torch.argmax(j))
    chosen = thr[best].item()
    if midpoint and best + 1 < len(thr):
        chosen = (chosen + thr[best + 1].item()) / 2
    return float(min(max(chosen, 0.0), 1.0))


def classification_metrics(y: torch.Tensor, probs: torch.Tensor, classes: list[str],
                           threshold: float | None = None) -> dict:
    import torchmetrics.functional.classification as tmc
    k = len(classes)
    pred = predictions(probs, threshold)
    cm = tmc.multiclass_confusion_matrix(pred, y, num_classes=k)
    per = {
        "precision": tmc.multiclass_precision(pred, y, num_classes=k, average="none", zero_division=0),
        "recall": tmc.multiclass_recall(pred, y, num_classes=k, average="none", zero_division=0),
        "specificity": tmc.multiclass_specificity(pred, y, num_classes=k, average="none"),
        "f1": tmc.multiclass_f1_score(pred, y, num_classes=k, average="none", zero_division=0),
    }
    out = {"accuracy": (pred == y).float().mean().item(), "confusion_matrix": cm.tolist(),
           "threshold": 0.5 if threshold is None else threshold}
    for name, vals in per.items():
        out[f"{name}_per_class"] = dict(zip(classes, [round(v, 6) for v in vals.tolist()]))
        out[f"{name}_macro"] = vals.mean().item()
    if k == 2:  # positive class = index 1 (PNEUMONIA): sensitivity and specificity as clinicians read them
        out["sensitivity"] = per["recall"][1].item()
        out["specificity"] = per["specificity"][1].item()
        out["precision"] = per["precision"][1].item()
        out["f1"] = per["f1"][1].item()
    out["roc_auc"] = roc_auc(y, probs)
    return out


def roc_auc(y: torch.Tensor, probs: torch.Tensor) -> float:
    """ROC-AUC (macro one-vs-rest for 3+ classes); NaN where it is undefined: one class only in ``y``, or,
    with 3+ classes, any class missing from ``y``. torchmetrics scores a missing class's AUC as 0, so a
    perfect model on labels [0, 0, 1, 1] of three classes got 0.667, and a bootstrap resample that drew
    no image of a small class pulled the interval down."""
    present = len(torch.unique(y))
    if present < 2 or (probs.shape[1] > 2 and present < probs.shape[1]):
        return float("nan")
    import torchmetrics.functional.classification as tmc
    if probs.shape[1] == 2:
        return tmc.binary_auroc(probs[:, 1], y).item()
    return tmc.multiclass_auroc(probs, y, num_classes=probs.shape[1], average="macro").item()


def calibration_error(y: torch.Tensor, probs: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error (15 equal-width bins, L1): binary, of P(positive class) against how often
    the positive class occurs in each bin; with 3+ classes, of the top class's probability against accuracy.
    NaN for no images."""
    if len(y) == 0:
        return float("nan")
    import torchmetrics.functional.classification as tmc
    if probs.shape[1] == 2:
        return tmc.binary_calibration_error(probs[:, 1].contiguous(), y, n_bins=n_bins).item()
    return tmc.multiclass_calibration_error(probs, y, num_classes=probs.shape[1], n_bins=n_bins).item()


def bootstrap_ci(y: torch.Tensor, probs: torch.Tensor, threshold: float | None, n: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> dict:
    """Percentile bootstrap over test images for accuracy and ROC-AUC."""
    rng = np.random.default_rng(seed)
    pred = predictions(probs, threshold)
    correct = (pred == y).float().numpy()
    accs, aucs = [], []
    for _ in range(n):
        idx = torch.from_numpy(rng.integers(0, len(y), len(y)))
        accs.append(correct[idx.numpy()].mean())
        aucs.append(roc_auc(y[idx], probs[idx]))
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    aucs = np.array(aucs)
    return {"accuracy_ci": np.percentile(accs, q).tolist(),
            "roc_auc_ci": np.nanpercentile(aucs, q).tolist() if np.isfinite(aucs).any() else [np.nan, np.nan]}


def paired_bootstrap_diff(correct_a: np.ndarray, correct_b: np.ndarray, n: int = 1000, seed: int = 0,
                          alpha: float = 0.05, resample_runs: bool = True) -> dict:
    """Accuracy of B minus A on the same test images, with a percentile bootstrap interval and the
    two-sided p-value that goes with it (0 lies outside the 1 - alpha interval when p < alpha).

    ``correct_a``/``correct_b``: (images,) for one run each, or (runs, images) for runs paired by seed.
    With several runs, each resample draws the runs (paired, with replacement) as well as the test
    images (the multi-bootstrap of Sellam et al. 2022, "The MultiBERTs"), so the interval covers how
    much the result moves between training seeds, not only which test images were drawn;
    ``resample_runs=False`` draws images only, treating these trained models as the object of study.

    ``correct_b`` may also be (inputs, runs, images): B trained on each of several input runs (GAN
    or autoencoder runs) with the seeds of A, which broadcasts against it. Input runs and seeds are
    crossed, not nested (seed s of A pairs with seed s of B on every input run), so each resample
    draws input runs, seeds and images independently and weighs cell (input, seed) by the product of
    their counts: Owen's (2007) "pigeonhole" bootstrap, slightly conservative for crossed designs."""
    d = np.asarray(correct_b, float) - np.atleast_2d(np.asarray(correct_a, float))
    d = d if d.ndim == 3 else np.atleast_2d(d)[None]
    inputs, runs, images = d.shape
    rng = np.random.default_rng(seed)
    draw = lambda size, k: rng.multinomial(size, np.full(size, 1 / size), size=k)
    diffs = np.empty(n)
    for lo in range(0, n, 256):    # blocks keep the (resamples, images) weights small for big test sets
        k = min(256, n - lo)
        w_inputs = draw(inputs, k) if resample_runs and inputs > 1 else np.ones((k, inputs))
        w_runs = draw(runs, k) if resample_runs and runs > 1 else np.ones((k, runs))
        w_images = draw(images, k)
        # mean of d over the drawn cells and images = weighted sum / (inputs * runs * images)
        diffs[lo:lo + k] = np.einsum("kg,kr,gri,ki->k", w_inputs, w_runs, d, w_images) / (inputs * runs * images)
    ci = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p = min(1.0, 2 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))))
    out = {"diff": float(d.mean()), "ci": [float(ci[0]), float(ci[1])], "p_value": p, "resamples": n,
           "runs": runs, "runs_resampled": bool(resample_runs and runs > 1)}
    if inputs > 1:
        out["input_runs"] = inputs
    return out


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test on the discordant pairs (binomial, p = 0.5)."""
    from scipy.stats import binomtest
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else binomtest(only_b, n, 0.5).pvalue
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": float(p)}


def paired_sign_flip_test(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact two-sided test that A and B are equally accurate on the same test images, each run one
    or more times with paired seeds: (runs, images) arrays of correctness.

    The unit is the test image, not the run: the seeds of one cell share their test images, so
    pooling their pairs into one McNemar test counts each image once per seed and reports far smaller
    p-values than the data support. Here each image contributes d = (runs B got right) − (runs A got
    right); under the null hypothesis swapping A and B on an image is as likely, so each d is as
    likely negated, and the p-value is P(|sum of ±d| >= |observed sum|), computed exactly. With one
    run per side d is in {−1, 0, +1} and this is the exact McNemar test."""
    from scipy.stats import binom
    a, b = np.atleast_2d(np.asarray(correct_a, int)), np.atleast_2d(np.asarray(correct_b, int))
    if a.shape != b.shape:
        raise ValueError(f"A and B need the same runs and images, got {a.shape} and {b.shape}")
    d = b.sum(axis=0) - a.sum(axis=0)
    observed = int(d.sum())
    mags, counts = np.unique(np.abs(d[d != 0]), return_counts=True)
    # null distribution of the sum, built one magnitude at a time: c images of size m give
    # m * (2k - c) with k ~ Binomial(c, 1/2)
    dist = np.ones(1)
    for m, c in zip(mags.tolist(), counts.tolist()):
        part = np.zeros(2 * m * c + 1)
        part[::2 * m] = binom.pmf(np.arange(c + 1), c, 0.5)
        dist = np.convolve(dist, part)
    half = (len(dist) - 1) // 2
    support = np.arange(-half, half + 1)
    p = float(min(1.0, dist[np.abs(support) >= abs(observed)].sum())) if observed else 1.0
    return {"p_value": p, "runs": int(a.shape[0]), "images_b_ahead": int((d > 0).sum()),
            "images_a_ahead": int((d < 0).sum()), "images": int(d.size)}


# ----------------------------------------------------------------------------- generative quality


class _PassThrough(nn.Module):
    """Lets torchmetrics' FID/KID consume precomputed features: the 'images' are the features."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def fid_on_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between two (N, d) feature sets (torchmetrics' FID with a pass-through extractor)."""
    # sync_on_compute off: the caller holds every feature; under torchrun torchmetrics would
    # otherwise gather (and wait for) the other ranks' states
    from torchmetrics.image.fid import FrechetInceptionDistance
    fid = FrechetInceptionDistance(feature=_PassThrough(real.shape[1]), normalize=True, sync_on_compute=False)
    fid.set_dtype(torch.float64)
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())


def fid_bootstrap_std(real: torch.Tensor, fake: torch.Tensor, n_boot: int = 100, seed: int = 0) -> float:
    """How far FID moves with the draw of images: its standard deviation when both feature sets
    are resampled with replacement.

    A spread, not an interval: resampling repeats images, which adds covariance noise, so the
    resampled FIDs sit above the FID of the sets themselves (a percentile interval of a real-vs-real
    FID can miss its own point). It covers the choice of images only; retraining the generator or
    the feature network moves FID further.
    """
    rng = np.random.default_rng(seed)
    draws = [fid_on_features(real[rng.integers(0, len(real), len(real))],
                             fake[rng.integers(0, len(fake), len(fake))]) for _ in range(n_boot)]
    return float(np.std(draws, ddof=1))


def kid_on_features(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 100,
                    seed: int = 0) -> tuple[float, float]:
    """Kernel distance (mean, std over subsets) between two (N, d) feature sets. Subsets hold
    ``subset_size`` of each, or half the smaller set when that is not more: subsets of a whole set
    are all the same draw, and their spread (0) would read as a precise figure (KID is unbiased at
    any subset size, so only the spread depends on it)."""
    smaller = min(len(real), len(fake))
    size = int(subset_size if subset_size < smaller else max(2, smaller // 2))
    torch.manual_seed(seed)
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance
    with warnings.catch_warnings():  # "will save all extracted features": they are small feature vectors here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=_PassThrough(real.shape[1]), normalize=True, subsets=subsets,
                                      subset_size=size, sync_on_compute=False)
    kid.update(real.float(), real=True)
    kid.update(fake.float(), real=False)
    mean, std = kid.compute()
    return float(mean), float(std)


def mean_pairwise_ssim(images: torch.Tensor, n_pairs: int = 300, seed: int = 0) -> float:
    """Mean SSIM over random distinct pairs of (N, 1, H, W) images in [0, 1]; high means low diversity."""
    n = len(images)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n
    return float(ssim_per_image(images[i].float(), images[j].float()).mean())


def ssim_per_image(a: torch.Tensor, b: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """SSIM of each image pair of (N, 1, H, W) tensors in [0, 1], ``chunk`` pairs at a time: torchmetrics'
    SSIM holds about 18 MB of intermediates per 224 px image, which over a whole split (624 test images)
    made `genaug encode` peak at 13 GiB (docs/PERFORMANCE.md (g))."""
    from torchmetrics.functional.image import structural_similarity_index_measure
    return torch.cat([structural_similarity_index_measure(a[k:k + chunk], b[k:k + chunk], data_range=1.0,
                                                          reduction="none") for k in range(0, len(a), chunk)])


def nearest_neighbours(queries: torch.Tensor, refs: torch.Tensor, metric: str = "rmse",
                       chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row its nearest ref row: (distances, indices). rmse on pixels, cosine on features."""
    q, r = queries.flatten(1).float(), refs.flatten(1).float()
    if metric == "cosine":
        q, r = nn.functional.normalize(q, dim=1), nn.functional.normalize(r, dim=1)
    dists, idxs = [], []
    for s in range(0, len(q), chunk):
        if metric == "cosine":
            d = 1 - q[s:s + chunk] @ r.T
        else:
            d = torch.cdist(q[s:s + chunk], r).pow(2).div(q.shape[1]).clamp_min(0).sqrt()
        v, i = d.min(dim=1)
        dists.append(v)
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def reconstruction_metrics(original: torch.Tensor, recon: torch.Tensor, chunk: int = 32) -> dict:
    """MSE, PSNR and SSIM of images in [0, 1], averaged over images (SSIM ``chunk`` images at a time,
    see ssim_per_image)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio
    mse = torch.mean((original - recon) ** 2, dim=(1, 2, 3))
    psnr = peak_signal_noise_ratio(recon, original, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = ssim_per_image(recon, original, chunk)
    return {"mse": float(mse.mean()), "psnr": float(psnr.mean()), "ssim": float(ssim.mean())}
