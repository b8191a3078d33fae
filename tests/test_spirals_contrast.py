"""The main job draws ERM beside manifold mixup (Figure 1's contrast) without changing the run's numbers or hash."""
import json

from PIL import Image


def test_figure1_draws_erm_beside_the_run_and_leaves_its_record_alone(cli, tmp_path):
    records = {}
    for beside in ("erm", "null"):
        out = cli("run", "tasks/spirals", "-c", "smoke", f"beside={beside}", "--results-dir", tmp_path / beside,
                  "--runs-dir", tmp_path / f"runs-{beside}", env={"OMP_NUM_THREADS": "1"})
        assert out.returncode == 0, out.stderr
        (path,) = (tmp_path / beside / "runs" / "spirals").glob("*.json")
        records[beside] = json.loads(path.read_text())
    drawn, alone = records["erm"], records["null"]
    assert drawn["run_id"] == alone["run_id"]                      # beside is not in the config hash
    assert {k: v for k, v in drawn["metrics"].items() if not k.endswith("time_s")} == \
           {k: v for k, v in alone["metrics"].items() if not k.endswith("time_s")}
    heights = {b: Image.open(tmp_path / f"runs-{b}" / "spirals" / drawn["run_id"] / "figure1.png").size[1]
               for b in records}
    assert heights["erm"] == 2 * heights["null"]                   # two rows: erm above, the run below
