"""The power statements hold by simulation; the sign-flip p-value is exact."""
import numpy as np
import pytest

from psa_pose.evaluation import bootstrap as bs
from psa_pose.evaluation import power as pw


def test_sign_flip_p_exact_on_hand_made_seeds():
    # |±1 ±2 ±3| over the 8 patterns: 6 6 4 4 2 2 0 0 -> 2 of 8 reach 6
    assert pw.sign_flip_p([1, 2, 3]) == 0.25
    # ±1 ±2 ±3.5: 6.5 -0.5 2.5 -4.5 4.5 -2.5 0.5 -6.5 -> 6 of 8 reach 2.5
    assert pw.sign_flip_p([1, -2, 3.5]) == 0.75
    assert pw.sign_flip_p([0.004, 0.002, 0.003, 0.001]) == 2 / 16
    assert pw.sign_flip_p([0.1]) == 1.0
    assert pw.sign_flip_p([0.1, 0.2, 0.3]) == 0.25           # float sums: ties still counted
    assert pw.min_sign_flip_p(3) == 0.25 and pw.min_sign_flip_p(5) == 0.0625
    with pytest.raises(ValueError, match='no paired differences'):
        pw.sign_flip_p([])


def test_seeds_needed_formula():
    z = 1.959963984540054 + 0.8416212335729143
    # se needed 0.01 / z; image part 0.002, seed part 0.01: n >= 0.01^2 / (se^2 - 0.002^2)
    n, why = pw.seeds_needed(0.01, 0.002, 0.01)
    assert n == int(np.ceil(0.01 ** 2 / ((0.01 / z) ** 2 - 0.002 ** 2))) == 12
    assert why == '12 seeds per model'
    assert pw.standard_error(0.002, 0.01, 12) <= 0.01 / z < pw.standard_error(0.002, 0.01, 11)
    n, why = pw.seeds_needed(0.005, 0.002, 0.004)
    assert n is None and why.startswith('undetectable at any number of seeds')
    n, why = pw.seeds_needed(0.02, 0.002, None)
    assert n is None and 'at least 2 seeds' in why
    assert pw.min_detectable(0.01) == pytest.approx(z * 0.01)


@pytest.mark.parametrize('effect_in_se', [None, 1.5])
def test_power_statement_by_simulation(effect_in_se):
    """Experiments on 100 images with per-image paired differences of known spread, decided by
    the bootstrap's own rule (95% percentile interval excludes 0): at the stated MDE the share
    that detect is within 0.05 of 80%; at 1.5 standard errors, of the stated power."""
    rng = np.random.default_rng(0)
    images, experiments = 100, 2000
    se = 1.0 / np.sqrt(images)
    delta = pw.min_detectable(se) if effect_in_se is None else effect_in_se * se
    stated = pw.detection_power(delta, se)
    if effect_in_se is None:
        assert stated == pytest.approx(pw.POWER, abs=1e-3)
    data = rng.normal(delta, 1.0, (experiments, images))
    counts = bs.resample_counts(images, 1000, seed=1)
    boot = counts @ data.T / images                                    # (B, experiments)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    detected = np.mean([bs.verdict([lo, hi]) != 'no detectable difference'
                        for lo, hi in zip(low, high)])
    assert abs(detected - stated) < 0.05
    # the bootstrap spread is the standard error the statement is made from
    assert np.mean(boot.std(axis=0, ddof=1)) == pytest.approx(se, rel=0.05)


def test_seeds_needed_by_simulation():
    """With the stated number of seeds, experiments whose ΔAP has an image part shared by the
    seeds and a seed part detect a true ΔAP of D with the stated power (two-sided 5% test)."""
    rng = np.random.default_rng(1)
    sd_images, sd_seeds, target = 0.002, 0.006, 0.01
    n, _ = pw.seeds_needed(target, sd_images, sd_seeds)
    se = pw.standard_error(sd_images, sd_seeds, n)
    observed = (target + rng.normal(0, sd_images, 20000)
                + rng.normal(0, sd_seeds, (n, 20000)).mean(0))
    detected = np.mean(np.abs(observed) / se > 1.959963984540054)
    assert detected >= pw.POWER - 0.01
    assert abs(detected - pw.detection_power(target, se)) < 0.05
    fewer = pw.standard_error(sd_images, sd_seeds, n - 1)
    assert pw.detection_power(target, fewer) < pw.POWER


def test_summary_one_and_several_seeds():
    one = pw.summary([0.01], 0.004, target=0.02)
    assert one['mde_AP'] == pytest.approx(pw.min_detectable(0.004))
    assert one['sign_flip_p'] == 1.0 and one['sign_flip_min_p'] == 1.0
    assert one['seeds_needed'] is None and 'at least 2 seeds' in one['power']['seeds_needed_why']
    three = pw.summary([0.01, 0.02, 0.015], 0.004, target=0.02)
    assert three['power']['sd_seeds'] == pytest.approx(0.005)
    assert three['mde_AP'] == pytest.approx(pw.min_detectable(np.sqrt(0.004 ** 2 + 0.005 ** 2 / 3)))
    assert three['sign_flip_p'] == 0.25 and isinstance(three['seeds_needed'], int)


def test_power_with_seeds_by_simulation_pooled_bootstrap():
    """3 seeds per model on 100 images: an image part shared by the seeds and a seed shift each,
    decided by the pooled bootstrap (images and seeds resampled, as compare_ap.py does): at the
    stated MDE the share that detect is within 0.05 of 80%."""
    rng = np.random.default_rng(0)
    images, seeds, experiments = 100, 3, 600
    sd_seeds = 0.15
    se = pw.standard_error(1.0 / np.sqrt(images), sd_seeds, seeds)
    delta = pw.min_detectable(se)
    counts = bs.resample_counts(images, 400, seed=1)
    detected = 0
    for e in range(experiments):
        shared = delta + rng.normal(0, 1.0, images)
        per_seed = [{'AP': counts @ (shared + shift) / images}
                    for shift in rng.normal(0, sd_seeds, seeds)]
        pooled = bs.pool_seeds(per_seed, seed=e, metrics=('AP',))['AP']
        detected += bs.verdict(bs.interval(pooled)) != 'no detectable difference'
    assert abs(detected / experiments - pw.POWER) < 0.05
