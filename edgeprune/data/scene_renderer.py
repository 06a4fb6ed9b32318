"""Procedural indoor scenes with exact dense labels (segmentation, depth, surface normals).

A seeded numpy ray-caster renders a room (floor, walls, ceiling) holding spheres, boxes and
upright cylinders, lit by a point light with hard shadows, textured and noised. It stands in
for NYU-v2's three tasks (the benchmark of CUT and AdapMTL) without downloading anything: the
labels are exact because they come from the geometry, not from a sensor.

Usage::

    from edgeprune.data.scene_renderer import render_scene, SCENE_CLASSES
    s = render_scene(seed=0, size=64)
    s.image.shape, s.seg.shape, s.depth.shape, s.normal.shape  # (3,64,64) (64,64) (64,64) (3,64,64)
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from edgeprune.fsio import atomic_path, cache_dir

SCENE_CLASSES: tuple[str, ...] = ("floor", "wall", "sphere", "box", "cylinder")
RENDERER_VERSION = 1
_EPS = 1e-4
_FAR = np.float64(1e9)


@dataclasses.dataclass(frozen=True)
class Scene:
    """One rendered view: image in [0, 1], class per pixel, z-depth in metres, unit normals
    in camera coordinates (x right, y up, z forward)."""

    image: np.ndarray  # (3, H, W) float32
    seg: np.ndarray  # (H, W) int64
    depth: np.ndarray  # (H, W) float32
    normal: np.ndarray  # (3, H, W) float32


@dataclasses.dataclass
class _Hits:
    t: np.ndarray
    normal: np.ndarray
    cls: np.ndarray
    obj: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Hits:
        return cls(np.full(n, _FAR), np.zeros((n, 3)), np.zeros(n, np.int64), np.full(n, -1))

    def take(self, t: np.ndarray, normal: np.ndarray, cls_id: int, obj_id: int) -> None:
        closer = t < self.t
        self.t = np.where(closer, t, self.t)
        self.normal[closer] = normal[closer]
        self.cls[closer] = cls_id
        self.obj[closer] = obj_id


def _plane(o: np.ndarray, d: np.ndarray, point: np.ndarray, n: np.ndarray) -> np.ndarray:
    denom = d @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((point - o) @ n) / denom
    return np.where((np.abs(denom) > 1e-9) & (t > _EPS), t, _FAR)


def _sphere(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    oc = o - c
    b = np.einsum("ij,ij->i", d, oc)
    disc = b * b - (np.einsum("ij,ij->i", oc, oc) - r * r)
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = -b - sq, -b + sq
    t = np.where(t0 > _EPS, t0, t1)
    t = np.where((disc > 0) & (t > _EPS), t, _FAR)
    normal = (o + t[:, None] * d - c) / r
    return t, normal


def _box(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(d) < 1e-12, 1e-12, d)
    ta, tb = (lo - o) * inv, (hi - o) * inv
    tmin, tmax = np.minimum(ta, tb), np.maximum(ta, tb)
    t_near, axis = tmin.max(axis=1), tmin.argmax(axis=1)
    t_far = tmax.min(axis=1)
    hit = (t_near <= t_far) & (t_near > _EPS)
    normal = np.zeros_like(d)
    rows = np.arange(len(d))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, t_near, _FAR), normal


def _cylinder(
    o: np.ndarray, d: np.ndarray, cx: float, cz: float, r: float, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Upright cylinder standing on the floor (axis +y from y=0 to y=h), with a top cap."""
    ox, oz = o[:, 0] - cx, o[:, 2] - cz
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = ox * d[:, 0] + oz * d[:, 2]
    c = ox * ox + oz * oz - r * r
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / np.where(a < 1e-12, 1e-12, a)
    y_side = o[:, 1] + t_side * d[:, 1]
    side_ok = (disc > 0) & (t_side > _EPS) & (y_side >= 0) & (y_side <= h)
    t_side = np.where(side_ok, t_side, _FAR)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cap = (h - o[:, 1]) / np.where(np.abs(d[:, 1]) < 1e-12, 1e-12, d[:, 1])
    px, pz = ox + t_cap * d[:, 0], oz + t_cap * d[:, 2]
    cap_ok = (t_cap > _EPS) & (px * px + pz * pz <= r * r)
    t_cap = np.where(cap_ok, t_cap, _FAR)
    t = np.minimum(t_side, t_cap)
    p = o + t[:, None] * d
    side_n = np.stack([p[:, 0] - cx, np.zeros(len(d)), p[:, 2] - cz], axis=1) / r
    cap_n = np.tile(np.array([0.0, 1.0, 0.0]), (len(d), 1))
    normal = np.where((t_cap < t_side)[:, None], cap_n, side_n)
    return t, normal


@dataclasses.dataclass(frozen=True)
class _Object:
    kind: str
    params: tuple[float, ...]
    color: np.ndarray

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        if self.kind == "sphere":
            return _sphere(o, d, np.array(p[:3]), p[3])
        if self.kind == "box":
            return _box(o, d, np.array(p[:3]), np.array(p[3:6]))
        return _cylinder(o, d, *p)


def _random_objects(rng: np.random.Generator, half_width: float, depth: float) -> list[_Object]:
    objects: list[_Object] = []
    for _ in range(int(rng.integers(3, 8))):
        kind = ("sphere", "box", "cylinder")[int(rng.integers(0, 3))]
        x = rng.uniform(-half_width + 0.6, half_width - 0.6)
        z = rng.uniform(1.6, min(depth - 0.6, 5.0))
        size = rng.uniform(0.3, 0.7)
        color = rng.uniform(0.2, 1.0, 3)
        if kind == "sphere":
            params: tuple[float, ...] = (x, size, z, size)
        elif kind == "box":
            height = rng.uniform(0.3, 1.4)
            params = (x - size, 0.0, z - size, x + size, height, z + size)
        else:
            params = (x, z, size * 0.8, rng.uniform(0.5, 1.8))
        objects.append(_Object(kind, params, color))
    return objects


def render_scene(seed: int, size: int = 64) -> Scene:
    """Render one scene deterministically from ``seed`` at ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    half_width, room_depth, ceiling = rng.uniform(2.0, 3.0), rng.uniform(5.0, 8.0), rng.uniform(2.6, 3.4)
    yaw, pitch = rng.uniform(-0.35, 0.35), rng.uniform(0.15, 0.45)
    cam = np.array([rng.uniform(-0.5, 0.5), rng.uniform(1.0, 1.8), 0.0])
    objects = _random_objects(rng, half_width, room_depth)
    light = np.array([rng.uniform(-1.5, 1.5), ceiling - 0.2, rng.uniform(1.5, room_depth - 1.0)])
    floor_color, wall_color = rng.uniform(0.3, 0.9, 3), rng.uniform(0.4, 1.0, 3)
    checker = rng.uniform(0.3, 1.0)

    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    rot_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    cam_to_world = rot_yaw @ rot_pitch
    focal = 1.0 / np.tan(np.radians(60.0) / 2)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(coords, -coords)
    d_cam = np.stack([u.ravel(), v.ravel(), np.full(size * size, focal)], axis=1)
    d_cam /= np.linalg.norm(d_cam, axis=1, keepdims=True)
    d = d_cam @ cam_to_world.T
    o = np.tile(cam, (len(d), 1))

    hits = _Hits.empty(len(d))
    planes = [  # (point, normal, class)
        (np.array([0.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), 0),
        (np.array([0.0, ceiling, 0.0]), np.array([0.0, -1.0, 0.0]), 1),
        (np.array([-half_width, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]), 1),
        (np.array([half_width, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]), 1),
        (np.array([0.0, 0.0, room_depth]), np.array([0.0, 0.0, -1.0]), 1),
        (np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0]), 1),
    ]
    for point, n, cls_id in planes:
        t = _plane(o, d, point, n)
        hits.take(t, np.tile(n, (len(d), 1)), cls_id, -1)
    for i, obj in enumerate(objects):
        t, n = obj.intersect(o, d)
        hits.take(t, n, SCENE_CLASSES.index(obj.kind), i)

    p = o + hits.t[:, None] * d
    albedo = np.where((hits.cls == 0)[:, None], floor_color, wall_color)
    tile = (np.floor(p[:, 0] * 2) + np.floor(p[:, 2] * 2)) % 2
    albedo = np.where(((hits.cls == 0) & (tile == 1))[:, None], albedo * checker, albedo)
    stripes = 0.85 + 0.15 * np.sin(p[:, 1] * 6 + p[:, 0] * 3)
    albedo = np.where((hits.cls == 1)[:, None], albedo * stripes[:, None], albedo)
    for i, obj in enumerate(objects):
        albedo[hits.obj == i] = obj.color

    to_light = light - p
    dist = np.linalg.norm(to_light, axis=1)
    to_light /= dist[:, None]
    lit = np.ones(len(d), bool)
    origin = p + hits.normal * 1e-3
    for obj in objects:
        t, _ = obj.intersect(origin, to_light)
        lit &= ~(t < dist)
    diffuse = np.clip(np.einsum("ij,ij->i", hits.normal, to_light), 0, None) * lit
    shade = 0.35 + 0.75 * diffuse / (1 + 0.02 * dist * dist)
    color = albedo * shade[:, None] + rng.normal(0, 0.02, albedo.shape)

    depth = np.einsum("ij,ij->i", hits.t[:, None] * d, cam_to_world[:, 2][None, :])
    normal_cam = hits.normal @ cam_to_world
    hw = (size, size)
    return Scene(
        image=np.clip(color, 0, 1).T.reshape(3, *hw).astype(np.float32),
        seg=hits.cls.reshape(hw).astype(np.int64),
        depth=depth.reshape(hw).astype(np.float32),
        normal=normal_cam.T.reshape(3, *hw).astype(np.float32),
    )


def scene_set(count: int, size: int, seed: int, cache: bool = True) -> dict[str, np.ndarray]:
    """Render ``count`` scenes (seeds ``seed .. seed+count-1``) stacked; cached on disk."""
    key = hashlib.sha256(f"v{RENDERER_VERSION}-{count}-{size}-{seed}".encode()).hexdigest()[:16]
    path = Path(cache_dir()) / f"scenes-{size}px-{count}-{seed}-{key}.npz"
    if cache and path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    scenes = [render_scene(seed + i, size) for i in range(count)]
    arrays = {f.name: np.stack([getattr(s, f.name) for s in scenes]) for f in dataclasses.fields(Scene)}
    if cache:
        # Another process may be rendering the same set: wait for it rather than fail.
        with atomic_path(path, wait_s=600.0) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **arrays as allow_pickle
    return arrays
