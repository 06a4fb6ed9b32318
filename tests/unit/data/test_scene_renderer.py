import numpy as np

from edgeprune.data.scene_renderer import SCENE_CLASSES, render_scene, scene_set


def test_rendering_is_deterministic_for_a_seed():
    a, b, c = render_scene(7, 32), render_scene(7, 32), render_scene(8, 32)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.seg, b.seg)
    assert not np.array_equal(a.image, c.image)


def test_labels_are_exact_and_well_formed():
    s = render_scene(3, 48)
    assert s.image.shape == (3, 48, 48) and s.image.min() >= 0 and s.image.max() <= 1
    assert s.seg.min() >= 0 and s.seg.max() < len(SCENE_CLASSES)
    assert np.all(s.depth > 0)
    np.testing.assert_allclose(np.linalg.norm(s.normal, axis=0), 1.0, atol=1e-5)


def test_floor_pixels_have_upward_normals_in_world_terms():
    # The floor's normal is world +y; in camera coordinates it must point up (y > 0) and towards
    # the camera (z < 0) since the camera looks down at it.
    s = render_scene(5, 48)
    floor = s.seg == 0
    assert floor.any()
    assert np.all(s.normal[1][floor] > 0.5)
    assert np.all(s.normal[2][floor] < 0)


def test_scene_set_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path))
    first = scene_set(3, 16, 11)
    files = list(tmp_path.glob("scenes-*.npz"))
    assert len(files) == 1
    second = scene_set(3, 16, 11)
    assert all(np.array_equal(first[k], second[k]) for k in first)
