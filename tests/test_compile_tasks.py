"""compile=true in the tasks whose models are plain modules: the smoke run trains through the compiled model (built
after the mixer, so the mixing hooks are compiled with it) and its first epoch's training loss is the eager one.
The compiled runs use compile_backend=aot_eager (dynamo's tracing and AOT autograd, where the hooks matter; inductor's
code generation takes minutes a model on a 2-core CPU, and tests/test_compile*.py run inductor on small models)."""
import json
from pathlib import Path

import pytest
from conftest import smoke_record

from mixsuite.compiling import CompileConfig, compiled
from mixsuite.config import config_hash
from mixsuite.errors import ConfigError


def first_epoch(record: dict) -> dict:
    return json.loads((Path(record["run_dir"]) / "metrics.jsonl").read_text().splitlines()[0])


# fewshot's smoke epoch is its long evaluation (minutes on 2 cores, and more compiled): its compile=true takes the
# same `compiled(cfg, model)` line as these three, not run here to keep CI's time
@pytest.mark.parametrize("task", ["image", "metric", "handwriting"])
def test_compile_true_trains_with_the_eager_losses(task, tmp_path):
    short = ["epochs=1"]
    eager = smoke_record(task, tmp_path / "eager", *short)
    both = smoke_record(task, tmp_path / "compiled", *short, "compile=true", "compile_backend=aot_eager", timeout=1500)
    assert both["config"]["compile"] is True and eager["config"]["compile"] is False
    assert both["config_hash"] != eager["config_hash"]
    loss_e, loss_c = first_epoch(eager)["loss"], first_epoch(both)["loss"]
    assert loss_c == pytest.approx(loss_e, rel=1e-4), (loss_e, loss_c)


def test_compile_left_off_keeps_the_hash():
    from dataclasses import dataclass, replace

    from mixsuite.config import RunConfig

    @dataclass
    class Plain(RunConfig):
        width: float = 1.0

    @dataclass
    class WithCompile(CompileConfig, Plain):
        pass

    assert config_hash(WithCompile()) == config_hash(Plain())
    assert config_hash(replace(WithCompile(), compile=True)) != config_hash(Plain())


def test_an_unknown_compile_backend_names_the_key():
    from torch import nn

    cfg = type("Cfg", (), {"compile": True, "compile_backend": "inductr"})()
    with pytest.raises(ConfigError, match="compile_backend 'inductr'.*inductor"):
        compiled(cfg, nn.Linear(2, 2))
