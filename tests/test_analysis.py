"""The seed's measurements: the spectrum summary's variance shares and the class-spectra figure."""
import pytest
import torch

from mixsuite.analysis import class_spread, plot_class_spectra, singular_values, spectrum_summary


def test_variance_shares_and_effective_rank_of_a_known_spectrum():
    spectra = {"overall": torch.tensor([3.0, 2.0, 1.0]), "per_class": {0: torch.tensor([1.0, 1.0]),
                                                                        1: torch.tensor([2.0, 0.0])}}
    s = spectrum_summary(spectra, prefix="")
    assert s["overall_var_top1"] == pytest.approx(9 / 14)
    assert s["overall_var_top2"] == pytest.approx(13 / 14)
    assert s["overall_var_top5"] == pytest.approx(1.0)           # fewer than 5 directions: all the variance
    assert s["overall_top1_share"] == pytest.approx(3 / 6)
    assert s["class_mean_var_top1"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["class_mean_erank"] == pytest.approx((2.0 + 1.0) / 2)


def test_class_spectra_figure_is_written(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 8, generator=g), torch.arange(60) % 6
    out = plot_class_spectra({"a": singular_values(x, y), "b": singular_values(2 * x, y)}, tmp_path / "f.png")
    assert out.is_file() and out.stat().st_size > 1000


def test_class_spectra_without_the_overall_svd():
    """overall=False skips the SVD of all points (wide conv states), keeps every class's spectrum and summary."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 3, 4, 4, generator=g), torch.arange(40) % 4
    full, classes_only = singular_values(x, y), singular_values(x, y, overall=False)
    assert classes_only["overall"] is None
    for c in range(4):
        assert torch.equal(classes_only["per_class"][c], full["per_class"][c])
    class_x = x[y == 2].flatten(1).double()
    assert torch.allclose(full["per_class"][2], torch.linalg.svdvals(class_x - class_x.mean(0)))
    summary = spectrum_summary(classes_only, prefix="")
    assert not any(k.startswith("overall") for k in summary)
    assert summary == {k: v for k, v in spectrum_summary(full, prefix="").items() if k.startswith("class_mean")}


def test_class_spread_is_within_class_over_overall_std_and_scale_free():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [12.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])
    expected = 2 ** 0.5 / (104 / 3) ** 0.5          # each class's std sqrt(2); overall: deviations -6, -4, 4, 6
    assert class_spread(x, y) == pytest.approx(expected)
    assert class_spread(3 * x.view(4, 1, 2), y) == pytest.approx(expected)      # any shape, any scale
    assert class_spread(torch.tensor([[1.0], [1.0], [5.0], [5.0]]), y) == 0.0   # each class one point
