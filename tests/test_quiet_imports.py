"""Third-party noise that says nothing to our users is silenced where it starts: a GraphMix run prints neither
torch_geometric's `torch.jit.script` FutureWarning nor its "Processing..." lines."""
import shutil

from conftest import run_cli


def test_a_graphmix_run_prints_no_third_party_noise(shared_data, tmp_path):
    raw = tmp_path / "data" / "planetoid" / "Cora" / "raw"
    shutil.copytree(shared_data / "planetoid" / "Cora" / "raw", raw)   # a fresh copy: the cache is processed anew
    out = run_cli("run", "tasks/graphmix", "-c", "smoke", f"data_root={tmp_path / 'data'}", "progress=false",
                  "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs",
                  env={"MIXSUITE_CACHE": str(tmp_path / "cache"), "PYTHONWARNINGS": "default"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "torch.jit.script" not in text and "Processing..." not in text and "Done!" not in text, text[-2000:]
