#!/usr/bin/env bash
# CI: mixsuite as a user installs it. Build the wheel from the tracked files, install it in a second fresh venv
# that has no source tree on its path, then from an empty temporary folder: `mixsuite list` must show every
# built-in task, `mixsuite run spirals -c smoke` must train and write its record there, and another task's named
# config must resolve.
# The new venv reaches torch and the other dependencies through one .pth line naming the CI venv's site-packages
# (nothing downloaded twice); that folder's own .pth files (the editable mixsuite) are not run, so `mixsuite`
# can only come from the wheel, which the script checks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python}                       # the CI venv's python, with torch and the rest
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset PYTHONPATH MIXSUITE_RESULTS MIXSUITE_RUNS MIXSUITE_TASK_PATHS

mkdir -p "$TMP/src"
git ls-files -z pyproject.toml setup.py README.md mixsuite tasks configs | xargs -0 cp --parents -t "$TMP/src"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$TMP/dist" "$TMP/src"

"$PY" -m venv --without-pip "$TMP/venv"
"$PY" -m pip --python "$TMP/venv/bin/python" install -q --no-deps "$TMP"/dist/mixsuite-*.whl
SITE=$("$TMP/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$SITE/ci_dependencies.pth"

mkdir "$TMP/work" && cd "$TMP/work"
"$TMP/venv/bin/python" - "$TMP/venv" "$ROOT" <<'PY'
import sys
from pathlib import Path
import mixsuite, mixsuite_tasks
venv, root = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
for module in (mixsuite, mixsuite_tasks):
    where = Path(list(module.__path__)[0]).resolve()
    assert where.is_relative_to(venv) and not where.is_relative_to(root), f"{module.__name__} from {where}"
print(f"wheel: mixsuite {mixsuite.__version__} from {Path(mixsuite.__file__).parent}")
PY
"$TMP/venv/bin/mixsuite" list | tee "$TMP/list.txt"
for task in "$ROOT"/tasks/*/; do
    name=$(basename "$task")
    grep -q "^$name .*mixsuite_tasks/$name\]$" "$TMP/list.txt" || { echo "wheel: task $name not listed" >&2; exit 1; }
done
"$TMP/venv/bin/mixsuite" run fewshot -c smoke --print-config | grep -q "^epochs: "
"$TMP/venv/bin/mixsuite" run spirals -c smoke
"$TMP/venv/bin/python" - <<'PY'
import json
from pathlib import Path
(record,) = Path(".").rglob("*.json")
rec = json.loads(record.read_text())
assert rec["status"] == "finished" and rec["git_sha"] == "unknown", rec
import mixsuite
assert rec["mixsuite_version"] == mixsuite.__version__
assert Path(rec["run_dir"]).is_dir() and not Path(rec["run_dir"]).is_absolute()
print(f"wheel: {record} written in the current folder, version {rec['mixsuite_version']}, no git sha")
PY
