"""The Task contract and how a task is found: a folder path, a name under ./tasks, or an entry point.

A task folder is a Python package whose `__init__.py` names its Task class in `TASK = "module:Class"`
(imported only when the task runs, so listing tasks imports none of their dependencies).

The built-in tasks are the folders of `tasks/` in a checkout; the wheel installs that folder as the package
`mixsuite_tasks` and `configs/` as `mixsuite_configs`, side by side as in the checkout, so a task's named
configs are found the same way in both: `<tasks>/<name>` has its configs in `<configs>/<name>/*.yaml`.
"""
from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .config import RunConfig
from .errors import ConfigError, UnknownName, UserError
from .paths import dataset_name
from .registry import did_you_mean

ENTRY_POINT_GROUP = "mixsuite.tasks"
INSTALLED_TASKS, INSTALLED_CONFIGS = "mixsuite_tasks", "mixsuite_configs"   # tasks/ and configs/ in the wheel


class Task:
    """What the engine drives. Subclass it, set `name`, `Config`, and implement the hooks; `mixsuite list` shows
    `summary`, by default the first line of the docstring of the task's package (its `__init__.py`).

    The engine calls: setup() once; then per epoch train_epoch(epoch) -> metrics and, on the eval cadence,
    evaluate(epoch) -> metrics; finish() -> final metrics (plots, analyses) at the end. state_dict() /
    load_state_dict() carry everything a resumed run needs (by default the objects named in `state_attrs`;
    the engine itself saves its seeded generators, so mixers resume exactly).

    Training (timm's TrainingTask.forward): setup() sets `self.train_loader` (any iterable of batches, iterated
    once an epoch) and `self.optimizer`; training_step(batch) -> {"loss": scalar tensor with grad, **extra scalar
    tensors to log}, the batch moved to the engine's device. The engine's default train_epoch does the rest:
    backward (fp16 loss scaling), optimizer step, and the logs' means over the epoch's samples, summed on the
    device and read once an epoch. Optional, for the default epoch:
      scheduler          stepped after each epoch; the lr the epoch trained with is logged as `lr`
      step_scheduler     stepped after each optimizer step
      clip_grad_norm     the gradients' norm is clipped to this before each step (None: no clipping)
      on_train_epoch_start(epoch)   by default puts `self.model` in train mode
      on_train_epoch_end(epoch, logs, samples, seconds) -> logs   e.g. to add a throughput
      batch_size(batch)  the samples a batch holds, which weights its logs (default: its first tensor's length)
    A task whose epoch is not a loop of such steps overrides train_epoch(epoch) -> metrics itself.
    """

    name: str = ""
    summary: str = ""
    Config: type = RunConfig
    primary_metric: str = "test_acc"     # the headline number of a run
    primary_mode: str = "max"            # the primary metric's direction: "max" (higher is better) or "min"
    baseline_method: str | None = None   # what the other methods are set against (`mixsuite compare --across-tasks`)
    select_metric: str | None = None     # chooses the best epoch (default: primary_metric)
    select_mode: str = "max"             # "max" or "min"
    distributed: bool = True             # False: trains in one process only (e.g. full-batch); refuses torchrun

    @classmethod
    def metric_mode(cls, metric: str) -> str | None:
        """"max" or "min" for the metrics whose direction the task declares (the primary and the selection metric)."""
        if metric == cls.primary_metric:
            return cls.primary_mode
        if metric == cls.select_metric:
            return cls.select_mode
        return None

    def __init__(self, cfg, engine):
        self.cfg = cfg
        self.engine = engine

    def setup(self) -> None:
        raise NotImplementedError

    train_loader = None
    optimizer = None
    scheduler = None
    step_scheduler = None
    clip_grad_norm: float | None = None

    def training_step(self, batch) -> dict:
        raise NotImplementedError(f"the {self.name} task must implement training_step(batch) -> {{'loss': ...}} "
                                  "(or train_epoch(epoch) itself)")

    def train_epoch(self, epoch: int) -> dict:
        return self.engine.train_epoch(self, epoch)

    def on_train_epoch_start(self, epoch: int) -> None:
        model = getattr(self, "model", None)
        if model is not None:
            model.train()

    def on_train_epoch_end(self, epoch: int, logs: dict, samples: int, seconds: float) -> dict:
        return logs

    def batch_size(self, batch) -> int:
        """How many samples `batch` holds: the length of its first tensor; 1 for a batch without one (a full-graph
        step)."""
        import torch   # here: listing tasks (which imports this module) needs no torch

        if isinstance(batch, torch.Tensor):
            return len(batch)
        items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
        return next((len(v) for v in items if isinstance(v, torch.Tensor) and v.dim()), 1)

    def evaluate(self, epoch: int) -> dict:
        raise NotImplementedError

    def on_best(self, epoch: int) -> None:
        """Called when an evaluated epoch becomes the best on the select metric (ties: the later epoch), e.g. to
        keep its weights and measure the costly test metrics once, at the end, on the selected weights."""

    def finish(self) -> dict:
        return {}

    def test_period(self, has_validation: bool) -> int:
        """The test split is measured every this many epochs (cfg.test_every evaluations apart), and every
        evaluation where there is no validation split, since the test then selects."""
        return (getattr(self.cfg, "test_every", 1) if has_validation else 1) * self.cfg.eval_every

    def test_due(self, epoch: int, has_validation: bool) -> bool:
        """Whether the evaluation at `epoch` measures the test split: every test_period epochs, and the last."""
        return epoch % self.test_period(has_validation) == 0 or epoch >= self.cfg.epochs

    def extension_problem(self, old_epochs: int) -> str | None:
        """Why a finished run of this config with `old_epochs` epochs, trained on (`mixsuite run --extend`), would not
        give the numbers of this config trained from scratch; None when it would. By default the number of epochs
        is taken to shape training (a schedule over the run); a task whose training does not depend on it says so."""
        return f"the {self.name} task's training may depend on the number of epochs (a schedule over the run)"

    # Attributes whose state_dict() a checkpoint carries (models, optimizers, schedulers); override
    # state_dict/load_state_dict for anything else.
    state_attrs: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in self.state_attrs}

    def load_state_dict(self, state: dict) -> None:
        missing = [name for name in self.state_attrs if name not in state]
        if missing:  # a checkpoint written before the task kept these (e.g. a scheduler added later)
            raise UserError(f"the checkpoint holds no state for {', '.join(missing)}: it was written by an older "
                            f"{self.name} task; start the run over with --resume never")
        for name in self.state_attrs:
            getattr(self, name).load_state_dict(state[name])

    @property
    def dataset(self) -> str:
        return dataset_name(self.cfg, self.name)


class KeepsBestWeights:
    """Mixin for a Task (listed before Task) that tests the weights of its best evaluated epoch at the end: on_best
    copies `self.net`'s weights into `best_net` when keeps_best_weights() says so; the copy goes into the checkpoint,
    so a resumed run still tests the epoch it selected."""

    best_net: dict | None = None

    def keeps_best_weights(self) -> bool:
        return True

    def on_best(self, epoch: int) -> None:
        if self.keeps_best_weights():
            self.best_net = {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_net": self.best_net}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.best_net = state.get("best_net")

    @contextlib.contextmanager
    def selected_weights(self):
        """Inside the block `self.net` holds the kept weights (yields True), or its own if none were kept (False);
        after it, its own again."""
        if self.best_net is None:
            yield False
            return
        own = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        self.net.load_state_dict(self.best_net)
        try:
            yield True
        finally:
            self.net.load_state_dict(own)


@dataclass
class TaskSpec:
    """A task found but not yet imported."""

    name: str
    source: str          # "folder <path>" or "entry point <value>"
    target: str          # "module:Class" to import
    folder: Path | None = None

    def load(self) -> type[Task]:
        if self.folder is not None:
            use_task_folders(self.folder.parent)
        module_name, _, attr = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:  # a package of an optional extra (torch_geometric: graph): name the extra
            from .extras import missing_extra

            if (extra := missing_extra(e, f"the {self.name} task")) is None:
                raise
            raise extra from e
        cls = getattr(module, attr, None)
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"{self.target} ({self.source}) is not a mixsuite Task subclass")
        if not cls.name:
            cls.name = self.name
        return cls

    def config_dirs(self) -> list[Path]:
        """Where the task's named configs are: `<configs>/<name>/` beside its tasks folder (`configs/` in a
        checkout, `mixsuite_configs/` when installed), or `configs/` inside the task's own folder or package."""
        if self.folder is not None:
            tasks_dir = self.folder.parent
            configs = INSTALLED_CONFIGS if tasks_dir.name == INSTALLED_TASKS else "configs"
            return [tasks_dir.parent / configs / self.name, self.folder / "configs"]
        spec = importlib.util.find_spec(self.target.partition(":")[0])
        return [Path(spec.origin).parent / "configs"] if spec is not None and spec.origin else []

    def named_configs(self) -> dict[str, Path]:
        """The task's named configs: name (the file's stem) -> path."""
        found: dict[str, Path] = {}
        for d in self.config_dirs():
            for path in sorted(d.glob("*.yaml")) if d.is_dir() else []:
                found.setdefault(path.stem, path)
        return found

    def config_file(self, value: str) -> str:
        """`-c VALUE`: a path to a YAML file, or the name of one of the task's configs (`smoke`, `smoke.yaml`)."""
        if Path(value).is_file() or os.sep in value or "/" in value:
            return value  # a path (a missing one is reported by the config loader)
        named = self.named_configs()
        name = value[:-5] if value.endswith(".yaml") else value
        if name in named:
            return str(named[name])
        raise ConfigError(f"config {value!r} is neither a file nor a named config of task {self.name!r}; "
                          f"{did_you_mean(name, named)}")

    def summary(self) -> str:
        if self.folder is not None:  # read, not imported: listing never imports a task's dependencies
            return first_line(ast.get_docstring(ast.parse((self.folder / "__init__.py").read_text())))
        try:
            cls = self.load()
        except Exception as e:  # listing must not die on one broken plugin
            return f"(cannot import: {e})"
        package = sys.modules.get(cls.__module__.rpartition(".")[0] or cls.__module__)
        return cls.summary or first_line(getattr(package, "__doc__", None))


def first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def use_task_folders(parent: str | Path) -> None:
    """Make the task folders under `parent` importable as `mixsuite.plugins.<folder>.<module>`, the names the
    runner imports them under: the one way tests, benchmarks and notebooks reach a task's own modules
    (`use_task_folders(Path("tasks"))`, then `from mixsuite.plugins.image.models import preactresnet18`)."""
    import mixsuite.plugins as plugins

    if not Path(parent).is_dir():
        raise UserError(f"use_task_folders: {parent} is not a folder; give the folder that holds the task folders "
                        "(e.g. the repository's tasks/)")
    parent = str(Path(parent).resolve())
    if parent not in plugins.__path__:
        plugins.__path__.append(parent)
    paths = [p for p in os.environ.get("MIXSUITE_TASK_PATHS", "").split(os.pathsep) if p]
    if parent not in paths:
        os.environ["MIXSUITE_TASK_PATHS"] = os.pathsep.join(paths + [parent])
    importlib.invalidate_caches()


def _folder_spec(folder: Path) -> TaskSpec:
    init = folder / "__init__.py"
    if not init.is_file():
        raise UserError(f"{folder} is not a task folder: it has no __init__.py")
    tree = ast.parse(init.read_text())
    target = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TASK" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                target = node.value.value
    if target is None:
        raise UserError(f"{init} must set TASK = 'module:ClassName' (e.g. TASK = 'task:SpiralsTask')")
    module, _, cls = target.partition(":")
    name = folder.resolve().name
    return TaskSpec(name, f"folder {folder}", f"mixsuite.plugins.{name}.{module}:{cls}", folder.resolve())


def task_dirs() -> list[Path]:
    """Where tasks are looked up by name: ./tasks, then the tasks/ beside an editable mixsuite checkout."""
    dirs = [Path.cwd() / "tasks", Path(__file__).resolve().parents[1] / "tasks"]
    out = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def installed_task_dir() -> Path | None:
    """The built-in tasks installed with the wheel (the package `mixsuite_tasks`), if any."""
    try:
        spec = importlib.util.find_spec(INSTALLED_TASKS)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def discover() -> dict[str, TaskSpec]:
    """Every task that `mixsuite run NAME` can find, by name: folders under task_dirs(), the installed built-ins
    (unless a folder has the name), then entry points.

    A name claimed twice (two folders, or a folder and an entry point) maps to an AmbiguousTask that
    refuses to load and names both sources.
    """
    found: dict[str, TaskSpec] = {}

    def add(spec: TaskSpec) -> None:
        if spec.name in found:
            first = found[spec.name]
            sources = first.sources if isinstance(first, AmbiguousTask) else [first.source]
            found[spec.name] = AmbiguousTask(spec.name, "ambiguous", "", sources=sources + [spec.source])
        else:
            found[spec.name] = spec

    def folders(d: Path):
        for folder in sorted(d.iterdir()):
            if (folder / "__init__.py").is_file():
                try:
                    yield _folder_spec(folder)
                except (UserError, SyntaxError):
                    continue

    for d in task_dirs():
        for spec in folders(d):
            add(spec)
    installed = installed_task_dir()
    if installed is not None and installed.resolve() not in [d.resolve() for d in task_dirs()]:
        for spec in folders(installed):  # the built-ins: a folder of the same name (a checkout's copy) comes first
            found.setdefault(spec.name, spec)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        add(TaskSpec(ep.name, f"entry point {ep.value}", ep.value.replace(" ", "")))
    return found


@dataclass
class AmbiguousTask(TaskSpec):
    sources: list = None

    def load(self):
        raise UserError(f"task name {self.name!r} is claimed by {' and by '.join(self.sources)}; "
                        "run it by folder path, or rename one")

    def summary(self) -> str:
        return f"(ambiguous: {'; '.join(self.sources)})"


def resolve(spec: str) -> TaskSpec:
    """A folder path (`tasks/spirals`, `./my_task`), or a registered name (`spirals`)."""
    path = Path(spec)
    if os.sep in spec or "/" in spec or path.is_dir():
        if not path.is_dir():
            raise UserError(f"task folder {spec!r} does not exist")
        folder_spec = _folder_spec(path)
        module = sys.modules.get(folder_spec.target.partition(":")[0])
        if module is not None and not Path(module.__file__).resolve().is_relative_to(folder_spec.folder):
            raise UserError(f"two task folders are named {path.name!r}; rename one of them")
        return folder_spec
    found = discover()
    if spec not in found:
        raise UnknownName(f"unknown task {spec!r}; {did_you_mean(spec, found)} (or give a folder path)")
    return found[spec]
