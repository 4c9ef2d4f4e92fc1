"""A small synthetic COCO person-keypoint dataset, for running the whole pipeline without COCO.

``python -m psa_pose.data.synth --out DIR`` writes::

    DIR/annotations/person_keypoints_train2017.json
    DIR/annotations/person_keypoints_val2017.json
    DIR/train2017/000000000001.jpg ...
    DIR/val2017/000001000001.jpg ...

in COCO's schema, which mmpose's ``CocoDataset`` and pycocotools read as they read COCO. Each
image holds 1-3 articulated figures (the 17 COCO keypoints on a body of capsules and discs, with
random joint angles, lean, body turn and scale) on a gradient/noise background with a few clutter
shapes, sometimes an occluding rectangle, sometimes a figure partly out of the frame.

Left and right are told apart as in real images, by geometry and facing, never by colour: a
figure faces the camera (a face with eyes and nose, its left side on the image's right) or, less
often, turns its back (hair all over the head, left side on the image's left). Colour-coded sides
would contradict mmpose's horizontal-flip augmentation and flip test, which swap the left/right
labels of a mirrored person.

Annotations: ``v=2`` visible; ``v=1`` inside the image but covered by another figure or an
occluder; ``v=0`` not labelled (outside the image, or the nose and eyes of a figure seen from
behind), stored as ``[0, 0, 0]`` like COCO. ``bbox`` is tight around the figure's whole
silhouette (occluded parts included) clipped to the image, ``segmentation`` the outer contours of
that silhouette and ``area`` its pixel count. Keypoints use OpenCV's convention (integer
coordinates are pixel centres), the one mmpose's affine transforms use.

Everything is drawn from ``numpy.random.Generator`` streams seeded by ``(seed, split, index)`` and
written as JPEG at a fixed quality, so a seed gives byte-identical files, and image ``i`` of a split
does not depend on how many images are asked for.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np



def _coco_metainfo() -> dict:
    """mmpose's COCO person metainfo (keypoint names, flip pairs, skeleton), as CocoDataset
    reads it."""
    import warnings

    import mmpose
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    path = os.path.join(os.path.dirname(mmpose.__file__), '.mim', 'configs', '_base_',
                        'datasets', 'coco.py')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return parse_pose_metainfo(dict(from_file=path))


_META = _coco_metainfo()
KEYPOINT_NAMES: Tuple[str, ...] = tuple(_META['keypoint_id2name'][i]
                                        for i in range(_META['num_keypoints']))
# the mirror image of each keypoint (what flip augmentation and flip test swap)
FLIP_INDICES: Tuple[int, ...] = tuple(_META['flip_indices'])
# COCO's person skeleton, 1-based keypoint indices as COCO annotation files give it
SKELETON: Tuple[Tuple[int, int], ...] = tuple((int(a) + 1, int(b) + 1)
                                              for a, b in _META['skeleton_links'])
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

SPLITS: Tuple[str, ...] = ('train2017', 'val2017')
# Image ids are unique across the two splits, as in COCO; annotation id = image id * 10 + k.
SPLIT_ID_OFFSET = {'train2017': 0, 'val2017': 1_000_000}
MAX_IMAGES = 999_999
MAX_PEOPLE = 3
MIN_SIDE, MAX_SIDE = 64, 4096
JPEG_QUALITY = 95
PROGRESS_EVERY = 100

DEFAULT_SEED = 0
DEFAULT_TRAIN_IMAGES = 256
DEFAULT_VAL_IMAGES = 64
DEFAULT_IMAGE_SIZE = (192, 256)  # (W, H)

# Sampling constants; lengths are fractions of a figure's nominal standing height.
BACK_FACING_PROB = 0.15
OCCLUDER_PROB = 0.3
OUT_OF_FRAME_PROB = 0.15
PEOPLE_PROBS = (0.5, 0.3, 0.2)  # 1, 2, 3 figures
RELAXED_ARM_PROB = 0.65
MIN_VISIBLE_KEYPOINTS = 6  # per figure, else the layout is redrawn
LAYOUT_TRIES = 30

# Palettes in BGR, cv2's channel order.
SKIN_TONES = ((189, 224, 255), (160, 200, 240), (120, 170, 220), (90, 135, 190),
              (60, 95, 145), (45, 65, 100))
HAIR_COLOURS = ((20, 20, 20), (25, 40, 65), (35, 70, 120), (90, 150, 205), (130, 130, 135))

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel centres and radii
_ONE = 1 << _SHIFT

# (shoulder, elbow, wrist, hip, knee, ankle) indices per side
_LEFT = (5, 7, 9, 11, 13, 15)
_RIGHT = tuple(FLIP_INDICES[i] for i in _LEFT)


def category() -> dict:
    """COCO's person category, with its 17 keypoint names and skeleton."""
    return {'supercategory': 'person', 'id': 1, 'name': 'person',
            'keypoints': list(KEYPOINT_NAMES), 'skeleton': [list(e) for e in SKELETON]}


# --------------------------------------------------------------------------------------------
# Figures


@dataclass
class _Figure:
    """One person in figure units (standing height 1, pelvis at the origin) until placed."""
    kpts: np.ndarray          # (17, 2) x, y
    front: bool               # faces the camera
    up: np.ndarray            # torso axis, unit, towards the head
    rt: np.ndarray            # unit, towards the image's right in the torso frame
    head_c: np.ndarray
    head_up: np.ndarray
    head_r: float
    r_upper_arm: float
    r_forearm: float
    r_thigh: float
    r_shin: float
    r_neck: float
    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    pants: np.ndarray
    shoes: np.ndarray

    def scaled(self, scale: float, offset: np.ndarray) -> '_Figure':
        """The figure scaled about its pelvis, then moved by ``offset`` (image pixels)."""
        f = _Figure(**self.__dict__)
        f.kpts = self.kpts * scale + offset
        f.head_c = self.head_c * scale + offset
        for name in ('head_r', 'r_upper_arm', 'r_forearm', 'r_thigh', 'r_shin', 'r_neck'):
            setattr(f, name, getattr(self, name) * scale)
        return f

    def extent(self) -> Tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the drawn figure, approximately (joint positions plus radii)."""
        pad = 2.2 * max(self.r_thigh, self.r_upper_arm)  # limb radii, hands and feet
        pts = np.vstack([self.kpts[5:], self.head_c[None]])
        x0, y0 = np.minimum(pts.min(0) - pad, self.head_c - self.head_r * 1.1)
        x1, y1 = np.maximum(pts.max(0) + pad, self.head_c + self.head_r * 1.1)
        return float(x0), float(y0), float(x1), float(y1)


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _colour(rng: np.random.Generator, base: Sequence[int], jitter: float) -> np.ndarray:
    return np.clip(np.asarray(base, float) + rng.uniform(-jitter, jitter, 3), 0, 255)


def _sample_figure(rng: np.random.Generator) -> _Figure:
    """A random pose in figure units. Angles in radians; a limb angle is measured from straight
    down, positive away from the body's midline, so the same numbers mirror for the two sides."""
    lean = float(np.clip(rng.normal(0.0, 0.18), -0.5, 0.5))
    up = np.array([math.sin(lean), -math.cos(lean)])
    rt = np.array([math.cos(lean), math.sin(lean)])
    prop = lambda: rng.uniform(0.9, 1.1)  # noqa: E731  per-person body proportions
    torso, half_sh, half_hip = 0.30 * prop(), 0.105 * prop(), 0.072 * prop()
    upper_arm, forearm, thigh, shin = 0.16 * prop(), 0.15 * prop(), 0.24 * prop(), 0.23 * prop()
    # A turned body looks narrower; cos stays above 0.69 so the sides never swap.
    squeeze = math.cos(rng.uniform(-0.8, 0.8))
    front = bool(rng.random() >= BACK_FACING_PROB)
    # Facing the camera, the person's left is on the image's right.
    left_sign = 1.0 if front else -1.0

    kp = np.zeros((NUM_KEYPOINTS, 2))
    shoulder_c = up * torso
    for idx, s in ((_LEFT, left_sign), (_RIGHT, -left_sign)):
        sh, el, wr, hip, kn, an = idx

        def limb(theta: float) -> np.ndarray:
            return -up * math.cos(theta) + s * rt * math.sin(theta)

        kp[sh] = shoulder_c + s * rt * half_sh * squeeze
        kp[hip] = s * rt * half_hip * squeeze
        # Mostly relaxed arms, as in COCO's photographs, and a wide range the rest of the time.
        if rng.random() < RELAXED_ARM_PROB:
            a_up = rng.uniform(-0.25, 0.9)
            a_fore = a_up + rng.uniform(-1.5, 0.4)
        else:
            a_up = rng.uniform(-0.6, 2.9)
            a_fore = a_up + rng.uniform(-2.4, 0.6)
        # foreshortening: a limb pointing at the camera looks shorter
        kp[el] = kp[sh] + limb(a_up) * upper_arm * rng.uniform(0.75, 1.0)
        kp[wr] = kp[el] + limb(a_fore) * forearm * rng.uniform(0.75, 1.0)
        a_thigh = rng.uniform(-0.15, 0.45) if rng.random() < 0.75 else rng.uniform(-0.3, 1.6)
        a_shin = float(np.clip(a_thigh + rng.uniform(-0.9, 0.5), -0.6, 1.9))
        kp[kn] = kp[hip] + limb(a_thigh) * thigh * rng.uniform(0.8, 1.0)
        kp[an] = kp[kn] + limb(a_shin) * shin * rng.uniform(0.8, 1.0)

    neck_up = _rot(up, rng.normal(0.0, 0.15))
    head_r = 0.068 * prop()
    head_c = shoulder_c + neck_up * 0.125 * prop()
    head_up = _rot(neck_up, rng.normal(0.0, 0.15))
    head_rt = np.array([-head_up[1], head_up[0]])
    # Face features shift towards where the head turns; the eyes close up as it turns.
    turn = float(np.clip(rng.normal(0.0, 0.2), -0.45, 0.45))
    dx = turn * 0.5 * head_r
    eye_half = 0.36 * head_r * math.cos(turn * 1.5)
    kp[0] = head_c + head_rt * dx * 1.3 * left_sign - head_up * 0.2 * head_r
    kp[1] = head_c + head_rt * (eye_half + dx) * left_sign + head_up * 0.15 * head_r
    kp[2] = head_c + head_rt * (-eye_half + dx) * left_sign + head_up * 0.15 * head_r
    kp[3] = head_c + head_rt * 0.95 * head_r * left_sign
    kp[4] = head_c - head_rt * 0.95 * head_r * left_sign

    return _Figure(
        kpts=kp, front=front, up=up, rt=rt, head_c=head_c, head_up=head_up, head_r=head_r,
        r_upper_arm=0.03 * prop(), r_forearm=0.025 * prop(), r_thigh=0.045 * prop(),
        r_shin=0.036 * prop(), r_neck=0.035,
        skin=_colour(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 12),
        hair=_colour(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 10),
        shirt=rng.uniform(0, 255, 3), pants=rng.uniform(0, 255, 3),
        shoes=rng.uniform(0, 90, 3))


# --------------------------------------------------------------------------------------------
# Drawing


def _fx(p: np.ndarray) -> Tuple[int, int]:
    return int(round(float(p[0]) * _ONE)), int(round(float(p[1]) * _ONE))


def _contrast(c: np.ndarray) -> np.ndarray:
    """A darker shade of a light colour, a lighter shade of a dark one: joint markers stay
    distinct from the limb they sit on whatever its colour."""
    lum = 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]
    return c * 0.45 if lum > 100 else c + (255 - c) * 0.55


class _Layer:
    """Draws a figure's colours and its silhouette mask together."""

    def __init__(self, h: int, w: int):
        self.img = np.zeros((h, w, 3), np.uint8)
        self.mask = np.zeros((h, w), np.uint8)

    def _both(self, fn: Callable[..., None], colour: np.ndarray) -> None:
        fn(self.img, tuple(float(c) for c in colour))
        fn(self.mask, 255)

    def disc(self, c: np.ndarray, r: float, colour: np.ndarray) -> None:
        rr = max(int(round(r * _ONE)), _ONE // 2)
        self._both(lambda im, col: cv2.circle(im, _fx(c), rr, col, -1, cv2.LINE_8, _SHIFT),
                   colour)

    def capsule(self, a: np.ndarray, b: np.ndarray, r: float, colour: np.ndarray) -> None:
        d = b - a
        n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6) * r
        quad = np.array([_fx(a + n), _fx(b + n), _fx(b - n), _fx(a - n)], np.int32)
        self._both(lambda im, col: cv2.fillConvexPoly(im, quad, col, cv2.LINE_8, _SHIFT),
                   colour)
        self.disc(a, r, colour)
        self.disc(b, r, colour)

    def polygon(self, pts: Sequence[np.ndarray], colour: np.ndarray) -> None:
        poly = np.array([_fx(p) for p in pts], np.int32)
        self._both(lambda im, col: cv2.fillConvexPoly(im, poly, col, cv2.LINE_8, _SHIFT),
                   colour)

    def ellipse(self, c: np.ndarray, axes: Tuple[float, float], angle_deg: float,
                colour: np.ndarray) -> None:
        ax = (max(int(round(axes[0] * _ONE)), 1), max(int(round(axes[1] * _ONE)), 1))
        self._both(lambda im, col: cv2.ellipse(im, _fx(c), ax, angle_deg, 0, 360, col, -1,
                                               cv2.LINE_8, _SHIFT), colour)


def _draw_figure(f: _Figure, h: int, w: int) -> _Layer:
    """Back to front: legs, hips, torso, arms, neck, head, then the joint markers on top, so a
    figure never hides its own keypoints."""
    L = _Layer(h, w)
    kp, up, rt = f.kpts, f.up, f.rt
    left_sign = 1.0 if f.front else -1.0
    for idx, s in ((_LEFT, left_sign), (_RIGHT, -left_sign)):
        sh, el, wr, hip, kn, an = idx
        L.capsule(kp[hip], kp[kn], f.r_thigh, f.pants)
        L.capsule(kp[kn], kp[an], f.r_shin, f.pants)
        toe = kp[an] + (s * rt * 0.6 - up * 0.15) * f.r_shin * 2.2
        L.capsule(kp[an], toe, f.r_shin * 0.85, f.shoes)
    sh_pts = [kp[sh] + s * rt * f.r_upper_arm * 0.9 + up * f.r_upper_arm * 0.5
              for sh, s in ((5, left_sign), (6, -left_sign))]
    hip_pts = [kp[hp] + s * rt * f.r_thigh * 0.8 - up * f.r_thigh * 0.3
               for hp, s in ((12, -left_sign), (11, left_sign))]
    L.polygon(sh_pts + hip_pts, f.shirt)
    band = [hip_pts[0] + up * f.r_thigh * 1.6, hip_pts[1] + up * f.r_thigh * 1.6,
            hip_pts[1], hip_pts[0]]
    L.polygon(band, f.pants)
    for idx in (_LEFT, _RIGHT):
        sh, el, wr = idx[:3]
        L.capsule(kp[sh], kp[el], f.r_upper_arm, f.shirt)
        L.capsule(kp[el], kp[wr], f.r_forearm, f.skin)
        d = kp[wr] - kp[el]
        d = d / max(float(np.hypot(*d)), 1e-6)
        L.disc(kp[wr] + d * f.r_forearm * 1.6, f.r_forearm * 1.35, f.skin)
    shoulder_c = (kp[5] + kp[6]) / 2
    L.capsule(shoulder_c, f.head_c, f.r_neck, f.skin)
    tilt = math.degrees(math.atan2(f.head_up[0], -f.head_up[1]))
    L.disc(f.head_c, f.head_r, f.hair)
    if f.front:
        L.ellipse(f.head_c - f.head_up * 0.15 * f.head_r, (0.82 * f.head_r, 0.8 * f.head_r),
                  tilt, f.skin)
        for e in (1, 2):
            L.disc(kp[e], max(0.13 * f.head_r, 0.8), np.array([35.0, 30.0, 30.0]))
        L.disc(kp[0], max(0.15 * f.head_r, 0.9), f.skin * 0.7 + np.array([0, 0, 60.0]) * 0.3)
    for e in (3, 4):
        L.disc(kp[e], max(0.22 * f.head_r, 1.0), _contrast(f.skin) * 0.4 + f.skin * 0.6)
    markers = ((5, f.shirt, f.r_upper_arm), (6, f.shirt, f.r_upper_arm),
               (7, f.shirt, f.r_upper_arm), (8, f.shirt, f.r_upper_arm),
               (9, f.skin, f.r_forearm), (10, f.skin, f.r_forearm),
               (11, f.pants, f.r_thigh), (12, f.pants, f.r_thigh),
               (13, f.pants, f.r_shin), (14, f.pants, f.r_shin),
               (15, f.pants, f.r_shin), (16, f.pants, f.r_shin))
    for k, colour, r in markers:
        L.disc(kp[k], max(0.75 * min(r, f.r_upper_arm * 1.2), 1.2), _contrast(colour))
    return L


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A two-colour linear gradient with low-frequency blotches and a few clutter shapes."""
    c0, c1 = rng.uniform(0, 255, (2, 3))
    a = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    t = xs * math.cos(a) + ys * math.sin(a)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    gh, gw = (int(v) for v in rng.integers(2, 9, 2))
    blotch = cv2.resize(rng.normal(0.0, 1.0, (gh, gw, 3)), (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img + blotch * rng.uniform(5, 30), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 5))):
        col = tuple(float(v) for v in rng.uniform(0, 255, 3))
        kind = rng.integers(3)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        size = rng.uniform(0.05, 0.25) * min(w, h)
        if kind == 0:
            cv2.circle(img, _fx((x, y)), int(size * _ONE), col, -1, cv2.LINE_AA, _SHIFT)
        elif kind == 1:
            a = rng.uniform(0, 180)
            box = cv2.boxPoints(((x, y), (size * rng.uniform(0.5, 2), size), a))
            cv2.fillConvexPoly(img, np.array([_fx(p) for p in box], np.int32), col,
                               cv2.LINE_AA, _SHIFT)
        else:
            x2, y2 = rng.uniform(0, w), rng.uniform(0, h)
            cv2.line(img, _fx((x, y)), _fx((x2, y2)), col, int(rng.integers(1, 4)),
                     cv2.LINE_AA, _SHIFT)
    return img


def _place(rng: np.random.Generator, fig: _Figure, slot: float, n: int, h: int,
           w: int) -> _Figure:
    """Scale the figure to a random share of the image height and put it in its horizontal
    slot; sometimes let part of it leave the frame."""
    x0, y0, x1, y1 = fig.extent()
    share = rng.uniform(0.6, 0.95) if n == 1 else rng.uniform(0.45, 0.85)
    scale = min(share * h / (y1 - y0), 0.97 * w / (x1 - x0))
    fw, fh = (x1 - x0) * scale, (y1 - y0) * scale
    cx = (slot + 0.5) / n * w + rng.normal(0.0, 0.12 * w)
    cy = rng.uniform(fh / 2, h - fh / 2)
    if rng.random() < OUT_OF_FRAME_PROB:
        # up to ~35% of the figure out of the frame, on a random side
        cx += rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.35) * fw
        cy += rng.uniform(0.0, 0.35) * fh * rng.choice([-1.0, 1.0])
        cx = float(np.clip(cx, fw * 0.15, w - fw * 0.15))
    else:
        cx = float(np.clip(cx, fw / 2, w - fw / 2))
    # the box centre in figure units, after scaling, goes to (cx, cy)
    offset = np.array([cx - (x0 + x1) / 2 * scale, cy - (y0 + y1) / 2 * scale])
    return fig.scaled(scale, offset)


# --------------------------------------------------------------------------------------------
# One image


def _inside(p: np.ndarray, h: int, w: int) -> bool:
    return 0.0 <= p[0] <= w - 1 and 0.0 <= p[1] <= h - 1


def _annotate(fig: _Figure, mask: np.ndarray, ids: np.ndarray, own_id: int, h: int,
              w: int) -> dict:
    """COCO annotation fields of one figure (without ``id`` / ``image_id``)."""
    kpts = np.round(fig.kpts, 2)
    out: List[float] = []
    for k, p in enumerate(kpts):
        if not _inside(p, h, w) or (not fig.front and k <= 2):
            out += [0, 0, 0]
            continue
        xi, yi = int(round(p[0])), int(round(p[1]))
        out += [float(p[0]), float(p[1]), 2 if ids[yi, xi] == own_id else 1]
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    lab = np.array(out, float).reshape(-1, 3)
    lab = lab[lab[:, 2] > 0, :2]
    if len(lab):
        # keypoints are pixel centres: keep them inside the box at its edges
        x0, y0 = min(x0, float(lab[:, 0].min())), min(y0, float(lab[:, 1].min()))
        x1, y1 = max(x1, float(lab[:, 0].max())), max(y1, float(lab[:, 1].max()))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    # one-pixel polygon simplification keeps the files small; ``area`` is the exact pixel count
    contours = [cv2.approxPolyDP(c, 1.0, True) for c in contours]
    seg = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    return {
        'segmentation': seg,
        'num_keypoints': int(sum(1 for v in out[2::3] if v > 0)),
        'area': float(np.count_nonzero(mask)),
        'iscrowd': 0,
        'keypoints': out,
        'bbox': [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
        'category_id': 1,
    }


def render_image(rng: np.random.Generator, width: int, height: int) -> Tuple[np.ndarray,
                                                                               List[dict]]:
    """One BGR image and its figures' COCO annotations (without ids), drawn from ``rng``."""
    h, w = height, width
    bg = _background(rng, h, w)
    n = 1 + int(rng.choice(MAX_PEOPLE, p=PEOPLE_PROBS))
    for attempt in range(LAYOUT_TRIES + 1):
        if attempt == LAYOUT_TRIES:
            n = 1  # a lone figure nearly always qualifies
        figs = [_place(rng, _sample_figure(rng), slot, n, h, w)
                for slot in rng.permutation(n)]
        # smaller figures are further away: draw them first
        figs.sort(key=lambda f: f.head_r)
        img, ids = bg.copy(), np.zeros((h, w), np.uint8)
        masks = []
        for i, f in enumerate(figs):
            layer = _draw_figure(f, h, w)
            on = layer.mask > 0
            img[on] = layer.img[on]
            ids[on] = i + 1
            masks.append(layer.mask)
        if rng.random() < OCCLUDER_PROB:
            ys, xs = np.nonzero(masks[int(rng.integers(n))])
            if len(xs):
                bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
                cx, cy = rng.uniform(xs.min(), xs.max()), rng.uniform(ys.min(), ys.max())
                ow, oh = bw * rng.uniform(0.3, 0.8), bh * rng.uniform(0.15, 0.4)
                p0, p1 = (cx - ow / 2, cy - oh / 2), (cx + ow / 2, cy + oh / 2)
                occ = np.zeros((h, w), np.uint8)
                cv2.rectangle(occ, _fx(p0), _fx(p1), 255, -1, cv2.LINE_8, _SHIFT)
                on = occ > 0
                img[on] = rng.uniform(0, 255, 3).astype(np.uint8)
                ids[on] = 255
        anns = [_annotate(f, m, ids, i + 1, h, w) for i, (f, m) in enumerate(zip(figs, masks))
                if m.any()]
        visible = [sum(1 for v in a['keypoints'][2::3] if v == 2) for a in anns]
        if len(anns) == n and min(visible) >= MIN_VISIBLE_KEYPOINTS:
            break
    # sensor noise and a little blur: no perfectly flat colours or hard aliasing
    noisy = img.astype(np.float64) + rng.normal(0.0, rng.uniform(2, 8), img.shape)
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.9))
    return img, anns


# --------------------------------------------------------------------------------------------
# Dataset


def _write_jpeg(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f'JPEG encoding failed for {path}')
    path.write_bytes(buf.tobytes())


def _write_split(root: Path, split: str, num_images: int, seed: int, size: Tuple[int, int],
                 report: Optional[Callable[[str], None]]) -> int:
    """Images and the annotation file of one split; returns the number of figures."""
    w, h = size
    (root / split).mkdir()
    images, annotations = [], []
    split_index = SPLITS.index(split)
    for i in range(num_images):
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_index, i]))
        img, anns = render_image(rng, w, h)
        image_id = SPLIT_ID_OFFSET[split] + i + 1
        name = f'{image_id:012d}.jpg'
        _write_jpeg(root / split / name, img)
        images.append({'license': 1, 'file_name': name, 'height': h, 'width': w,
                       'id': image_id})
        for k, ann in enumerate(anns, 1):
            annotations.append({**ann, 'image_id': image_id, 'id': image_id * 10 + k})
        if report and ((i + 1) % PROGRESS_EVERY == 0 or i + 1 == num_images):
            report(f'{split}: {i + 1}/{num_images} images')
    data = {
        'info': {'description': 'psa_pose synthetic person keypoints', 'version': '1.0',
                 'year': 2025, 'contributor': 'psa_pose.data.synth', 'date_created': '',
                 'seed': seed, 'split': split},
        'licenses': [{'id': 1, 'name': 'synthetic, generated by psa_pose', 'url': ''}],
        'images': images,
        'annotations': annotations,
        'categories': [category()],
    }
    with open(root / 'annotations' / f'person_keypoints_{split}.json', 'w') as fh:
        json.dump(data, fh)
    return len(annotations)


def check_args(seed: int, train_images: int, val_images: int,
               image_size: Tuple[int, int]) -> None:
    """Raise ``ValueError`` naming the first bad argument."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f'the seed must be a non-negative integer, got {seed!r}')
    for name, n in (('train', train_images), ('val', val_images)):
        if not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            raise ValueError(f'the number of {name} images must be in [1, {MAX_IMAGES}], '
                             f'got {n!r}')
    if len(image_size) != 2 or not all(isinstance(v, int) and MIN_SIDE <= v <= MAX_SIDE
                                       for v in image_size):
        raise ValueError(f'the image size (W, H) must have each side in [{MIN_SIDE}, '
                         f'{MAX_SIDE}], got {tuple(image_size)!r}')


def generate(out: os.PathLike | str, seed: int = DEFAULT_SEED,
             train_images: int = DEFAULT_TRAIN_IMAGES, val_images: int = DEFAULT_VAL_IMAGES,
             image_size: Tuple[int, int] = DEFAULT_IMAGE_SIZE, overwrite: bool = False,
             report: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
    """Write the dataset to ``out``; returns the number of figures per split.

    The dataset is built in a hidden temporary directory beside ``out`` and renamed into place
    at the end, so ``out`` either holds a complete dataset or is left as it was. ``out`` may be
    missing or an empty directory; an existing non-empty one is replaced only with
    ``overwrite=True``. ``report`` receives progress lines.
    """
    check_args(seed, train_images, val_images, tuple(image_size))
    out = Path(os.path.abspath(out))
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise FileExistsError(f'{out} exists and is not a directory')
        if any(out.iterdir()) and not overwrite:
            raise FileExistsError(f'{out} is not empty (use overwrite=True / --overwrite)')
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', suffix='.partial', dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        (tmp / 'annotations').mkdir()
        counts = {}
        for split, n in zip(SPLITS, (train_images, val_images)):
            counts[split] = _write_split(tmp, split, n, seed, tuple(image_size), report)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', suffix='.old', dir=out.parent))
            os.replace(out, old)  # onto the empty dir mkdtemp made
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='python -m psa_pose.data.synth',
        description='Write a synthetic COCO person-keypoint dataset (train2017/val2017 layout).')
    p.add_argument('--out', required=True, metavar='DIR', help='dataset root to create')
    p.add_argument('--seed', type=int, default=DEFAULT_SEED, metavar='S',
                   help='default: %(default)s')
    p.add_argument('--train-images', type=int, default=DEFAULT_TRAIN_IMAGES, metavar='N',
                   help='default: %(default)s')
    p.add_argument('--val-images', type=int, default=DEFAULT_VAL_IMAGES, metavar='M',
                   help='default: %(default)s')
    p.add_argument('--image-size', type=int, nargs=2, metavar=('W', 'H'),
                   default=list(DEFAULT_IMAGE_SIZE), help='default: %d %d' % DEFAULT_IMAGE_SIZE)
    p.add_argument('--overwrite', action='store_true', help='replace a non-empty --out')
    p.add_argument('--quiet', action='store_true', help='no progress lines on stderr')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    size = tuple(args.image_size)
    try:
        check_args(args.seed, args.train_images, args.val_images, size)
    except ValueError as e:
        parser.error(str(e))
    report = None if args.quiet else (lambda msg: print(f'synth: {msg}', file=sys.stderr,
                                                        flush=True))
    start = time.perf_counter()
    try:
        counts = generate(args.out, args.seed, args.train_images, args.val_images, size,
                          overwrite=args.overwrite, report=report)
    except (FileExistsError, OSError) as e:
        print(f'synth: error: {e}', file=sys.stderr)
        return 1
    if report:
        report(f'wrote {args.train_images} train images ({counts["train2017"]} people) and '
               f'{args.val_images} val images ({counts["val2017"]} people) to {args.out} '
               f'in {time.perf_counter() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
