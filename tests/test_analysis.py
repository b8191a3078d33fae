"""The seed's measurements: the spectrum summary's variance shares and the class-spectra figure."""
import pytest
import torch

from mixsuite.analysis import plot_class_spectra, singular_values, spectrum_summary


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
