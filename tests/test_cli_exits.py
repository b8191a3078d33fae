"""Exit codes and one-line endings: a bad mixing layer is a config error (2) naming the layers there are; Ctrl-C
ends with one line (no traceback) and 130, the run's lock released so the same command resumes."""
from mixsuite.cli import main

from conftest import ROOT


def spirals(tmp_path, *overrides):
    return main(["run", str(ROOT / "tasks" / "spirals"), *overrides, "--runs-dir", str(tmp_path / "runs"),
                 "--results-dir", str(tmp_path / "results"), "progress=false", "plots=false", "epochs=2"])


def test_an_unknown_mixing_layer_exits_2_with_the_layers_available(tmp_path, capsys):
    rc = spirals(tmp_path, "mix_layers=[nosuchlayer]")
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "mixing layer 'nosuchlayer' is not a module of SpiralNet" in err and "layers available: " in err
    assert all(name in err for name in ("hidden1", "hidden2", "bottleneck", "input")) and "Traceback" not in err


def test_ctrl_c_ends_with_one_line_and_130(tmp_path, capsys, monkeypatch):
    from mixsuite.plugins.spirals.task import SpiralsTask

    def interrupted(self, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(SpiralsTask, "train_epoch", interrupted)
    rc = spirals(tmp_path)
    err = capsys.readouterr().err
    assert rc == 130
    assert err == "mixsuite: interrupted; the same command resumes\n"
    assert not list((tmp_path / "runs").rglob("*.lock")) and not (tmp_path / "results").exists()
