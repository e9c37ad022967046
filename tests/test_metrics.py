import math

import numpy as np
import pytest
import torch

from genaug.metrics import (bootstrap_ci, calibration_error, classification_metrics, fid_bootstrap_std, roc_auc, fid_on_features, kid_on_features, mcnemar, nearest_neighbours,
                            paired_bootstrap_diff, paired_sign_flip_test, reconstruction_metrics, choose_threshold)


def test_binary_metrics_match_hand_computed_confusion_matrix():
    # truth: 4 normal, 6 pneumonia; predictions give TN=3 FP=1 FN=2 TP=4
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    p1 = torch.tensor([.1, .2, .3, .9, .8, .7, .6, .9, .4, .2])
    m = classification_metrics(y, torch.stack([1 - p1, p1], 1), ["NORMAL", "PNEUMONIA"])
    assert m["confusion_matrix"] == [[3, 1], [2, 4]]
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["sensitivity"] == pytest.approx(4 / 6)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["precision"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    # AUC by counting: pairs (pos, neg) with pos score > neg score (ties count half)
    pos, neg = p1[y == 1], p1[y == 0]
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in pos.tolist() for b in neg.tolist()])
    assert m["roc_auc"] == pytest.approx(auc, abs=1e-6)


def test_calibration_error_matches_hand_computed_bins():
    # 15 bins of width 1/15: 0.9, 0.8, 0.3 and 0.2 fall in bins of their own, so each contributes
    # |p - y|; 0.62 and 0.64 share [0.6, 0.667): mean p 0.63 against 1 positive in 2, a gap of 0.13
    y = torch.tensor([1, 0, 0, 0, 1, 0])
    p1 = torch.tensor([.9, .8, .3, .2, .62, .64])
    expected = (0.1 + 0.8 + 0.3 + 0.2) / 6 + (2 / 6) * 0.13
    assert calibration_error(y, torch.stack([1 - p1, p1], 1)) == pytest.approx(expected, abs=1e-6)
    # three classes: the top class's probability against whether it is right (0.7 right, 0.55 wrong)
    probs = torch.tensor([[.7, .2, .1], [.1, .55, .35]])
    assert calibration_error(torch.tensor([0, 2]), probs) == pytest.approx((0.3 + 0.55) / 2, abs=1e-6)
    assert math.isnan(calibration_error(torch.tensor([], dtype=torch.long), torch.zeros(0, 2)))


def test_threshold_chosen_on_validation_separates():
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    p1 = torch.tensor([.1, .2, .3, .35, .4, .45])  # all below 0.5, but separable at ~0.35
    thr = choose_threshold(y, torch.stack([1 - p1, p1], 1))
    assert 0.3 < thr <= 0.35


def test_threshold_midpoint_lies_in_the_gap_below_the_lowest_positive_counted():
    # positives 0.9, 0.6 and 0.2, negatives 0.5, 0.3 and 0.1. At >= 0.6: TPR 2/3, FPR 0, J 2/3; at >= 0.2:
    # TPR 1, FPR 1/3, J 2/3 too; elsewhere less. Of the two the highest score is chosen (0.6).
    # The next lower score is the negative 0.5, so the midpoint is 0.55; it calls the same six images alike.
    y = torch.tensor([1, 1, 1, 0, 0, 0])
    p1 = torch.tensor([.9, .6, .2, .5, .3, .1])
    probs = torch.stack([1 - p1, p1], 1)
    assert choose_threshold(y, probs) == pytest.approx(0.6)
    assert choose_threshold(y, probs, midpoint=True) == pytest.approx(0.55)
    # a model that ranks every negative above every positive: J is greatest (0) at 1.0, calling nothing
    # positive; the midpoint, between 1.0 and the top score 0.9, still calls nothing positive
    flipped = torch.tensor([0, 0, 1, 1])
    q = torch.tensor([.9, .8, .2, .1])
    assert choose_threshold(flipped, torch.stack([1 - q, q], 1), midpoint=True) == pytest.approx(0.95)


def test_three_class_auc_is_undefined_where_a_class_is_missing():
    probs = torch.tensor([[.8, .1, .1], [.6, .3, .1], [.2, .7, .1], [.1, .8, .1]])
    # a perfect ranking of the two classes present: torchmetrics' macro mean scores the absent class 0 (2/3)
    assert math.isnan(roc_auc(torch.tensor([0, 0, 1, 1]), probs))
    # one-vs-rest by counting pairs: class 0 ranks both above; class 1's 0.7 beats 0.1 and 0.3, not 0.8;
    # class 2's 0.1 ties all three
    assert roc_auc(torch.tensor([0, 0, 1, 2]), probs) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    # resamples without the small class are left out of the interval, not counted as a poor model
    y = torch.tensor([0] * 10 + [1] * 10 + [2])
    p = torch.eye(3)[y] * 0.9 + 0.1 / 3
    ci = bootstrap_ci(y, p, None, n=200, seed=0)
    assert ci["roc_auc_ci"] == [1.0, 1.0]


def test_three_class_macro():
    y = torch.tensor([0, 1, 2, 2])
    probs = torch.eye(3)[torch.tensor([0, 1, 2, 1])]
    m = classification_metrics(y, probs, ["N", "B", "V"])
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["recall_per_class"] == {"N": 1.0, "B": 1.0, "V": 0.5}


def test_mcnemar_exact_known_case():
    a = np.array([1] * 20 + [0] * 10, bool)   # A wrong on 10 that B gets right, never the reverse
    b = np.ones(30, bool)
    r = mcnemar(a, b)
    assert r["only_b_correct"] == 10 and r["only_a_correct"] == 0
    assert r["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar(a, a)["p_value"] == 1.0


def test_paired_sign_flip_test_is_mcnemar_for_one_run():
    a = np.array([1] * 20 + [0] * 10 + [1] * 3, bool)
    b = np.array([1] * 30 + [0] * 3, bool)            # B ahead on 10 images, A on 3
    assert paired_sign_flip_test(a, b)["p_value"] == pytest.approx(mcnemar(a, b)["p_value"])
    assert paired_sign_flip_test(a, a)["p_value"] == 1.0


# two runs per side on three images, written per image as (A's two runs, B's two runs)
UP2, UP1, SAME, DOWN1 = ((0, 0), (1, 1)), ((0, 1), (1, 1)), ((1, 1), (1, 1)), ((1, 1), (0, 1))


@pytest.mark.parametrize("images, p", [
    ((UP2, UP1, SAME), 0.5),      # d = 2, 1, 0: sums of ±2 ±1 are -3, -1, 1, 3; |S| >= 3 in 2 of 4
    ((UP2, UP2, UP1), 0.25),      # d = 2, 2, 1: |S| = 5 in 2 of the 8 sign choices
    ((UP2, DOWN1, UP1), 0.75),    # d = 2, -1, 1, observed 2: ±2 ±1 ±1 is 0 in 2 of 8
])
def test_paired_sign_flip_test_hand_computed(images, p):
    a = np.array([img[0] for img in images]).T     # (runs, images)
    b = np.array([img[1] for img in images]).T
    assert paired_sign_flip_test(a, b)["p_value"] == pytest.approx(p)


def test_paired_sign_flip_test_counts_images_not_repeated_seeds():
    rng = np.random.default_rng(0)
    a, b = rng.random(200) < 0.75, rng.random(200) < 0.85
    one = paired_sign_flip_test(a, b)["p_value"]
    # five seeds that happen to agree on every image carry the evidence of one run, no more;
    # pooling them into one McNemar test would claim much more
    five = paired_sign_flip_test(np.tile(a, (5, 1)), np.tile(b, (5, 1)))["p_value"]
    assert five == pytest.approx(one)
    assert mcnemar(np.tile(a, 5), np.tile(b, 5))["p_value"] < one / 100


def test_paired_bootstrap():
    a = np.array([1, 0, 1, 1, 0, 1, 0, 1] * 10)
    same = paired_bootstrap_diff(a, a, n=200)
    assert same["diff"] == 0 and same["ci"] == [0, 0]
    better = paired_bootstrap_diff(a, np.ones_like(a), n=500)
    assert better["diff"] == pytest.approx(1 - a.mean())
    assert better["ci"][0] <= better["diff"] <= better["ci"][1] and better["ci"][0] > 0
    assert better["p_value"] < 0.05 and same["p_value"] == 1.0      # p agrees with the interval


def test_paired_bootstrap_counts_the_spread_between_seeds():
    # seed 0: B right where A is wrong on 10 of 40 images; seed 1: the reverse on the same images.
    # Averaged over seeds every image is a tie, so resampling images alone sees no uncertainty at
    # all; resampling the seeds too shows that the difference is +25 or -25 points depending on the seed.
    a = np.ones((2, 40), int)
    b = np.ones((2, 40), int)
    a[0, :10], b[1, :10] = 0, 0
    images_only = paired_bootstrap_diff(a, b, n=400, resample_runs=False)
    assert images_only["diff"] == 0 and images_only["ci"] == [0, 0]
    both = paired_bootstrap_diff(a, b, n=400)
    assert both["runs_resampled"] and both["ci"][0] <= -0.2 and both["ci"][1] >= 0.2 and both["p_value"] > 0.5


def test_fid_hand_computed_shift():
    # same covariance, means 3 apart in one of two dimensions: FID = |mu1 - mu2|^2 = 9
    torch.manual_seed(0)
    real = torch.randn(500, 2, dtype=torch.float64)
    fake = real + torch.tensor([3.0, 0.0], dtype=torch.float64)
    assert fid_on_features(real, fake) == pytest.approx(9.0, abs=1e-3)
    assert fid_on_features(real, real.clone()) == pytest.approx(0.0, abs=1e-3)


def test_fid_bootstrap_std_matches_the_spread_of_fresh_draws():
    # FID between two 4-d Gaussians a shift apart, over 60 fresh draws of 150 images a side: the
    # bootstrap on a single draw should tell how far that draw's FID could have been
    g = torch.Generator().manual_seed(0)
    shift = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    def draw():
        return (torch.randn(150, 4, generator=g, dtype=torch.float64),
                torch.randn(150, 4, generator=g, dtype=torch.float64) + shift)
    fresh_sd = float(np.std([fid_on_features(*draw()) for _ in range(60)], ddof=1))
    real, fake = draw()
    boot_sd = fid_bootstrap_std(real, fake, n_boot=100, seed=0)
    assert 0.5 * fresh_sd < boot_sd < 2 * fresh_sd
    assert fid_bootstrap_std(real, fake, n_boot=100, seed=0) == boot_sd          # seeded
    # four times the images, about half the spread
    big_real, big_fake = torch.randn(600, 4, dtype=torch.float64), torch.randn(600, 4, dtype=torch.float64) + shift
    assert fid_bootstrap_std(big_real, big_fake, n_boot=100) < 0.75 * boot_sd


def test_kid_zero_for_same_distribution_and_positive_for_shift():
    torch.manual_seed(0)
    a, b = torch.randn(300, 4), torch.randn(300, 4)
    near, near_sd = kid_on_features(a, b, subsets=20, subset_size=100)
    far, _ = kid_on_features(a, b + 2, subsets=20, subset_size=100)
    assert abs(near) < 2 * near_sd          # unbiased estimate: zero within its spread
    assert far > 100 * abs(near)


def test_kid_spread_is_not_zero_when_the_sets_are_smaller_than_a_subset():
    # 74 held-out images of a class against subsets of 100: drawing them all would give every subset
    # the same images and a spread of exactly 0
    torch.manual_seed(0)
    a, b = torch.randn(74, 4), torch.randn(74, 4) + 0.5
    _, sd = kid_on_features(a, b, subsets=20, subset_size=100)
    assert sd > 1e-3   # the whole sets in every subset gave 3.6e-07: rounding only
    _, sd_full = kid_on_features(a[:3], b[:3], subsets=5, subset_size=100)
    assert sd_full >= 0   # the smallest sets still give a figure (subsets of 2)


def test_nearest_neighbours_and_reconstruction_values():
    refs = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    d, i = nearest_neighbours(torch.tensor([[0.9, 1.0], [0.1, 0.0]]), refs)
    assert i.tolist() == [1, 0]
    assert d[0].item() == pytest.approx(math.sqrt(0.01 / 2), rel=1e-4)
    x = torch.full((2, 1, 16, 16), 0.5)
    r = reconstruction_metrics(x, x + 0.1)
    assert r["mse"] == pytest.approx(0.01, rel=1e-4) and r["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert reconstruction_metrics(x, x)["ssim"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_reconstruction_metrics_in_chunks_equal_one_pass(chunk):
    # per-image values averaged: the chunk (kept small to bound SSIM's memory) must not change them,
    # including a last chunk shorter than the rest (5 images)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 32, 32, generator=gen)
    y = (x + 0.1 * torch.rand(x.shape, generator=gen)).clamp(0, 1)
    whole, parts = reconstruction_metrics(x, y, chunk=5), reconstruction_metrics(x, y, chunk=chunk)
    assert parts == pytest.approx(whole, rel=1e-5) and 0 < whole["ssim"] < 1


def test_paired_bootstrap_resamples_input_runs_crossed_with_seeds():
    # 8 GAN runs: on 4 of them B gets every image right, on the other 4 none, with every seed. Seeds
    # and images add nothing, so the pooled difference is the share of "good" GAN runs among 8 drawn
    # with replacement: Binomial(8, 1/2) / 8, whose 2.5% and 97.5% points are 1/8 and 7/8 by hand
    # (P(X <= 1) = 9/256 = 0.035, P(X = 0) = 0.004).
    a = np.zeros((3, 50), int)
    b = np.zeros((8, 3, 50), int)
    b[:4] = 1
    pooled = paired_bootstrap_diff(a, b, n=4000)
    assert pooled["input_runs"] == 8 and pooled["diff"] == pytest.approx(0.5)
    assert pooled["ci"] == pytest.approx([0.125, 0.875])
    # holding the GAN runs fixed (as one benchmark run does) sees no uncertainty at all
    fixed = paired_bootstrap_diff(a, b, n=400, resample_runs=False)
    assert fixed["ci"] == pytest.approx([0.5, 0.5])
    # one input run reduces to the 2-D bootstrap, draw for draw
    assert paired_bootstrap_diff(a, b[:1], n=300) == paired_bootstrap_diff(a, b[0], n=300)


def _class_quality(blurred, shuffled, real_vs_real=1.0):
    from genaug.quality import features_uninformative
    fid = {"synthetic": 0.0, "real_vs_real": real_vs_real, "real_blurred": blurred, "real_patch_shuffled": shuffled}
    fid["features_uninformative"] = features_uninformative(fid)
    return {"fid": fid, "kid": {"synthetic": 0.0, "synthetic_std": 0.0, "real_vs_real": 0.0, "real_vs_real_std": 0.0},
            "fidelity": {"synthetic": 1.0, "real_heldout": 1.0},
            "diversity": {"synthetic_mean_pairwise_ssim": 0.5, "real_mean_pairwise_ssim": 0.4},
            "memorization": {"fraction_near_copies_pixels": 0.0, "fraction_near_copies_features": 0.0,
                             "threshold_quantile": 0.01}}


@pytest.mark.parametrize("blurred, shuffled, real_vs_real, uninformative", [
    (102.3, 108.2, 1.69, False),   # session 21's NORMAL row: both weak references far above the floor
    (1.5, 150.0, 1.0, False),      # one reference separated is enough
    (0.0, 0.0, 0.0, True),         # collapsed features: every FID 0
    (1.9, 1.5, 1.0, True),         # neither reference above twice the floor
])
def test_fid_features_that_cannot_see_broken_images_are_called_uninformative(blurred, shuffled, real_vs_real,
                                                                             uninformative):
    from types import SimpleNamespace
    from genaug.quality import format_quality
    q = _class_quality(blurred, shuffled, real_vs_real)
    assert q["fid"]["features_uninformative"] is uninformative
    text = format_quality({"feature_extractor": {"kind": "domain CNN"}, "classes": {"PNEUMONIA": q}},
                          SimpleNamespace(synthetic=False))
    assert ("**PNEUMONIA: the FID features do not tell real images from blurred or patch-shuffled ones" in text) \
        is uninformative
    assert "--resize" not in text   # squashed, as every GAN before session 81: nothing to say
    padded = format_quality({"feature_extractor": {"kind": "domain CNN"}, "classes": {"PNEUMONIA": q},
                             "resize": "pad"}, SimpleNamespace(synthetic=False))
    assert "Images that are not square were centred on a black square of their long side (--resize pad)" in padded


@pytest.mark.parametrize("value, shown", [(15.123, "15.12"), (0.1, "0.10"), (0.0, "0.00"), (0.0011373, "0.0011"),
                                          (1.1307e-05, "1.1e-05")])
def test_small_fids_keep_two_significant_digits_instead_of_reading_0_00(value, shown):
    from genaug.quality import fid_text
    assert fid_text(value) == shown


@pytest.mark.parametrize("value, shown", [(0.0123, "0.0123"), (0.001, "0.0010"), (0.0, "0.0000"),
                                          (6.4e-05, "6.4e-05"), (-2.13e-06, "-2.1e-06")])
def test_small_kids_keep_two_significant_digits_instead_of_reading_0_0000(value, shown):
    # KID's unbiased estimate can fall below zero: "-0.0000" would hide both its sign and its size
    from genaug.quality import _kid
    assert _kid(value) == shown
