"""How large a ΔAP an experiment can see, how many seeds a claim needs, and the exact sign-flip
test over seeds (docs/diagnosis.md).

The observed ΔAP (mean over n paired seeds, all on one val set) is modelled as the true ΔAP plus
two independent errors: image sampling (which images the val set holds; shared by every seed, so
more seeds do not shrink it; standard deviation ``sd_images``, from the paired image bootstrap
with every seed pair kept) and training noise (standard deviation ``sd_seeds`` of the per-seed
paired ΔAP, divided by sqrt(n)). With ``se = sqrt(sd_images^2 + sd_seeds^2 / n)``, a two-sided
test at level ``alpha`` detects a true ΔAP ``delta`` with probability
``Phi(delta/se - z) + Phi(-delta/se - z)``, ``z = Phi^-1(1 - alpha/2)``; the minimum detectable
ΔAP at power ``P`` is ``(z + Phi^-1(P)) * se``.
"""
import itertools
import math
from statistics import NormalDist
from typing import Optional, Sequence, Tuple

import numpy as np

POWER, ALPHA = 0.8, 0.05
_N = NormalDist()


def standard_error(sd_images: float, sd_seeds: Optional[float] = None, seeds: int = 1) -> float:
    """The standard error of ΔAP averaged over ``seeds`` paired seeds."""
    return math.sqrt(sd_images ** 2 + ((sd_seeds or 0.0) ** 2) / seeds)


def detection_power(delta: float, se: float, alpha: float = ALPHA) -> float:
    """Probability that a two-sided level-``alpha`` test detects a true difference ``delta``."""
    if se == 0:
        return 1.0 if delta else alpha
    z = _N.inv_cdf(1 - alpha / 2)
    return _N.cdf(abs(delta) / se - z) + _N.cdf(-abs(delta) / se - z)


def min_detectable(se: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest true difference detected with probability ``power`` (normal approximation,
    the negligible far tail left out)."""
    return (_N.inv_cdf(1 - alpha / 2) + _N.inv_cdf(power)) * se


def seeds_needed(target: float, sd_images: float, sd_seeds: Optional[float],
                 power: float = POWER, alpha: float = ALPHA) -> Tuple[Optional[int], str]:
    """Seeds per model for a true ΔAP ``target`` to be detected with ``power``: ``(n, why)``;
    ``n`` is None when no number of seeds suffices (image sampling alone hides it) or when the
    seed spread is unknown (one seed)."""
    need_se = abs(target) / (_N.inv_cdf(1 - alpha / 2) + _N.inv_cdf(power))
    if need_se <= sd_images:
        return None, (f'undetectable at any number of seeds: image sampling alone gives ΔAP a '
                      f'standard error of {sd_images:.4f}, a true ΔAP of {abs(target):.4f} needs '
                      f'below {need_se:.4f}; a larger val set is the only way')
    if sd_seeds is None:
        return None, ('unknown: one seed per model shows no seed-to-seed spread; train at least '
                      '2 seeds per model')
    n = max(1, math.ceil(sd_seeds ** 2 / (need_se ** 2 - sd_images ** 2) - 1e-12))
    return n, f'{n} seed{"s" * (n > 1)} per model'


def sign_flip_p(deltas: Sequence[float]) -> float:
    """Exact two-sided sign-flip permutation p-value of the mean of paired differences: the
    share of the 2^n sign patterns whose |mean| is at least the observed one."""
    d = np.asarray(deltas, float)
    if d.size == 0:
        raise ValueError('no paired differences')
    if d.size > 20:
        raise ValueError(f'{d.size} seeds: 2^{d.size} sign patterns are too many to enumerate')
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    observed = abs(d.sum())
    # a relative tolerance: patterns equal to the observed sum in exact arithmetic count
    return float(np.mean(np.abs(signs @ d) >= observed * (1 - 1e-12) - 1e-15))


def min_sign_flip_p(seeds: int) -> float:
    """The smallest p-value the two-sided sign-flip test can give with ``seeds`` pairs:
    the observed pattern and its mirror, 2 / 2^n."""
    return 2.0 / 2 ** seeds


def summary(per_seed: Sequence[float], sd_images: Optional[float],
            target: Optional[float] = None) -> dict:
    """A PSA row's power keys: ``mde_AP`` (None without a bootstrap), ``sign_flip_p``,
    ``sign_flip_min_p``, ``power`` (the inputs) and with ``target`` ``seeds_needed``."""
    n = len(per_seed)
    sd_seeds = float(np.std(per_seed, ddof=1)) if n > 1 else None
    se = None if sd_images is None else standard_error(sd_images, sd_seeds, n)
    out = {'mde_AP': None if se is None else min_detectable(se),
           'sign_flip_p': sign_flip_p(per_seed), 'sign_flip_min_p': min_sign_flip_p(n),
           'power': {'level': POWER, 'alpha': ALPHA, 'seeds': n, 'sd_images': sd_images,
                     'sd_seeds': sd_seeds, 'se': se}}
    if target is not None:
        if sd_images is None:
            out['seeds_needed'], why = None, 'unknown: no bootstrap (--bootstrap 0)'
        else:
            out['seeds_needed'], why = seeds_needed(target, sd_images, sd_seeds)
        out['power'].update({'target_delta': target, 'seeds_needed_why': why})
    return out
