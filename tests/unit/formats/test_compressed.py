import numpy as np
import pytest

from edgeprune.formats.compressed import densify, is_nm, to_bsr, to_csr, to_nm


def sparse(rng, shape, density):
    w = rng.standard_normal(shape).astype(np.float32)
    return w * (rng.random(shape) < density)


def test_csr_round_trip_and_int32_indices():
    w = sparse(np.random.default_rng(0), (8, 5, 3, 3), 0.2)
    c = to_csr(w)
    assert c.arrays["indices"].dtype == np.int32 and c.arrays["ptr"].dtype == np.int32
    assert c.stored_values == np.count_nonzero(w)
    np.testing.assert_array_equal(densify(c), w)


def test_bsr_stores_whole_blocks_and_round_trips():
    rng = np.random.default_rng(1)
    keep = rng.random((2, 45)) < 0.3
    w = rng.standard_normal((8, 5, 3, 3)).astype(np.float32)
    w *= np.repeat(keep, 4, axis=0).reshape(8, 45)[:, :, None].reshape(8, 5, 3, 3)
    c = to_bsr(w, 4, 1)
    assert c.arrays["values"].shape == (keep.sum(), 4, 1)
    np.testing.assert_array_equal(densify(c), w)
    with pytest.raises(ValueError, match="does not tile"):
        to_bsr(w, 3, 1)


def test_nm_packs_channel_groups_and_rejects_denser_weights():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    groups = w.transpose(0, 2, 3, 1).reshape(-1, 4)
    np.put_along_axis(groups, np.argsort(np.abs(groups), axis=1)[:, :2], 0.0, axis=1)
    w = groups.reshape(4, 3, 3, 8).transpose(0, 3, 1, 2).copy()
    c = to_nm(w, 2, 4)
    assert c.arrays["nm_idx"].dtype == np.uint8 and c.arrays["values"].shape == (4, 8 * 9 // 2)
    np.testing.assert_array_equal(densify(c), w)
    w[0, :3, 0, 0] = 1.0  # three of one group of four
    assert not is_nm(w, 2, 4) and to_nm(w, 2, 4) is None
