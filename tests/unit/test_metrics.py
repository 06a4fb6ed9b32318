import math

import pytest
import torch

from edgeprune import metrics as M


def test_top1():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]])
    assert M.top1(logits, torch.tensor([0, 1, 1, 0])) == 0.5


def seg_case():
    # prediction classes per pixel: [0, 0, 1, 1, 2, 2]; truth: [0, 1, 1, 1, 2, 0]
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    truth = torch.tensor([0, 1, 1, 1, 2, 0]).reshape(1, 2, 3)
    logits = torch.nn.functional.one_hot(pred, 3).float().T.reshape(1, 3, 2, 3)
    return logits, truth


def test_miou_hand_computed():
    logits, truth = seg_case()
    # class 0: inter 1, union 3 (pred {0,1}, truth {0,5}) -> 1/3; class 1: inter 2, union 3 -> 2/3;
    # class 2: inter 1, union 2 -> 1/2
    assert M.miou(logits, truth) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_pixel_accuracy_ignores_unlabelled_pixels():
    logits, truth = seg_case()
    assert M.pixel_accuracy(logits, truth) == pytest.approx(4 / 6)
    truth2 = truth.clone()
    truth2[0, 0, 1] = -1  # the pixel predicted 0 with truth 1 is now unlabelled
    assert M.pixel_accuracy(logits, truth2) == pytest.approx(4 / 5)


def test_depth_errors_skip_invalid_pixels():
    pred = torch.tensor([[1.0, 2.0, 4.0, 9.0]])
    truth = torch.tensor([[2.0, 2.0, 2.0, 0.0]])
    assert M.depth_abs_error(pred, truth) == pytest.approx((1 + 0 + 2) / 3)
    assert M.depth_rel_error(pred, truth) == pytest.approx((0.5 + 0 + 1) / 3)


def test_normal_angle_metrics():
    # angles: 0, 10, 20, 40 degrees around the z axis
    angles = torch.tensor([0.0, 10.0, 20.0, 40.0])
    rad = torch.deg2rad(angles)
    pred = torch.stack([torch.sin(rad), torch.zeros(4), torch.cos(rad)]).reshape(1, 3, 1, 4) * 3.0  # unnormalised
    truth = torch.tensor([0.0, 0.0, 1.0]).reshape(1, 3, 1, 1).expand(1, 3, 1, 4)
    assert M.normal_mean_angle(pred, truth) == pytest.approx(17.5, abs=1e-4)
    assert M.normal_median_angle(pred, truth) == pytest.approx(10.0, abs=1e-4)
    assert M.normal_within(11.25)(pred, truth) == pytest.approx(0.5)
    assert M.normal_within(22.5)(pred, truth) == pytest.approx(0.75)
    assert M.normal_within(30.0)(pred, truth) == pytest.approx(0.75)


def test_delta_t_signs_and_averages():
    dense = {"seg.miou": 0.5, "depth.abs_err": 0.2}
    pruned = {"seg.miou": 0.45, "depth.abs_err": 0.18}
    hib = {"seg.miou": True, "depth.abs_err": False}
    # miou -10%, abs error 10% lower = +10% -> mean 0
    assert M.delta_t(pruned, dense, hib) == pytest.approx(0.0)
    assert M.delta_t({"seg.miou": 0.55, "depth.abs_err": 0.22}, dense, hib) == pytest.approx(0.0)
    assert M.delta_t({"seg.miou": 0.4, "depth.abs_err": 0.2}, dense, hib) == pytest.approx(-10.0)
    assert math.isnan(M.delta_t({}, {}, {}))
