"""Bad config values end before any work: exit code 2, the field, the bad value, the nearest valid spelling, no
traceback, and no run folder or record left behind."""
import pytest

from mixsuite.cli import main

from conftest import ROOT

CASES = [   # (task, override, what the message must hold)
    ("spirals", "dataset=nosuch", ["dataset: 'nosuch'", "nearest is 'spirals'"]),
    ("fewshot", "backbone=nosuch", ["backbone: 'nosuch'", "conv4, resnet12, wrn28-10", "nearest is"]),
    ("handwriting", "model=nosuch", ["model: 'nosuch'", "gated, crnn", "nearest is"]),
    ("handwriting", "decoder=beem", ["decoder: 'beem'", "did you mean 'beam'?"]),
    ("fewshot", "episode_classifier=logistc", ["episode_classifier: 'logistc'", "did you mean 'logistic'?"]),
    ("spirals", "alpha=-1", ["alpha: -1.0 is out of range", ">= 0"]),
    ("image", "mix_prob=1.5", ["mix_prob: 1.5 is out of range", "[0, 1]"]),
    ("graphmix", "input_dropout=1.5", ["input_dropout: 1.5 is out of range", "[0, 1]"]),
    ("handwriting", "epochs=0", ["epochs: 0 is out of range", ">= 1"]),
    ("image", "model=timm:resnet51", ["model: timm has no model 'resnet51'", "did you mean 'resnet51q'"]),
    ("image", "method=manifod", ["method: 'manifod'", "did you mean 'manifold'?"]),
    ("graphmix", "dataset=coraa", ["dataset: 'coraa'", "did you mean 'cora'?"]),
    ("spirals", "alpha=.inf", ["alpha: inf is not a finite number"]),     # hung the Beta sampler's loop
    ("spirals", "alpha=.nan", ["alpha: nan is not a finite number"]),
    ("spirals", "lr=-.inf", ["lr: -inf is not a finite number"]),
    ("image", "alpha=inf", ["alpha: 'inf' is not a finite number"]),      # text YAML does not read as a number
    ("graphmix", "alpha=.inf", ["alpha: inf is not a finite number"]),    # a float with no range rule
]


@pytest.mark.parametrize("task,override,expected", CASES, ids=[f"{t}-{o}" for t, o, _ in CASES])
def test_a_bad_value_exits_2_before_any_work(task, override, expected, tmp_path, capsys):
    runs, results = tmp_path / "runs", tmp_path / "results"
    rc = main(["run", str(ROOT / "tasks" / task), override, "--runs-dir", str(runs), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("mixsuite: config error: ") and "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not runs.exists() and not results.exists()


def test_every_problem_of_a_command_is_named_at_once(tmp_path, capsys):
    rc = main(["run", str(ROOT / "tasks" / "image"), "method=manifod", "loss=bc", "epochs=0",
               "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and "3 problems" in err and "did you mean 'bce'?" in err and "epochs: 0" in err
    assert not (tmp_path / "runs").exists()
