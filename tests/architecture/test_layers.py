"""The folder tree is the architecture: layers import downward only and no module imports itself in a circle.

Every `import` / `from ... import` of the project's own packages is read from the source (module level and
inside functions alike: a lazy import is still an arrow). A module may import modules of its own layer or of
the layers below it; the layers are listed top first. The twins never import each other.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("benchmarks", "dppo", "core_torch", "core_tf", "shared")

# top first: (layer, module prefixes). A prefix names a package or a module and everything below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("scripts over the command, the documentation site's generated pages", ("benchmarks", "dppo.docs")),
    ("command line", ("dppo.cli", "dppo.commands")),
    ("workflows", ("dppo.workflows",)),
    ("drivers", ("dppo.training", "dppo.parity", "dppo.bench")),
    ("algorithms", ("dppo.algorithms",)),
    ("export", ("dppo.interop",)),
    ("checkpoint files", ("dppo.checkpoints",)),
    ("the parity report (judges twin quantities)", ("dppo.parity.report",)),
    ("run files and environments", ("dppo.runs", "dppo.envs", "dppo")),
    ("twins: algorithms", ("core_torch.algorithms", "core_tf.algorithms")),
    ("twins: diffusion policy", ("core_torch.diffusion", "core_tf.diffusion")),
    ("twins: networks", ("core_torch.networks", "core_tf.networks")),
    ("twins: runtime", ("core_torch.runtime", "core_tf.runtime", "core_torch", "core_tf")),
    ("shared: settings", ("shared.settings",)),
    ("shared: algorithm math, data, diffusion tables", ("shared.algorithms", "shared.data", "shared.diffusion",
                                                        "shared.guided", "shared.ddpo")),
    ("shared: specs and files", ("shared.param_spec", "shared.checkpoint", "shared.lr_schedule", "shared.precision",
                                 "shared.framework_seeds", "shared.probe_result", "shared.temp_dirs",
                                 "shared.tolerances", "shared.serving")),
    ("shared: config reading", ("shared.config",)),
    ("shared: errors", ("shared.errors", "shared")),
]


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _target(name: str) -> str | None:
    """The project module an imported dotted name lives in (`a.b.C` -> `a.b`), or None outside the project."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = _target(name) if name.split(".")[0] in PACKAGES else None
                if target and target != module and not module.startswith(target + "."):
                    edges[module].add(target)
    return edges


def layer_of(module: str) -> int:
    """Index of the layer whose longest prefix matches the module."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, index = len(p), i
    assert index is not None, f"{module} is in no layer: add it to LAYERS"
    return index


def test_every_module_belongs_to_a_layer():
    for module in modules():
        layer_of(module)


def test_imports_point_down_only():
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in imports().items() for b in sorted(targets) if layer_of(b) < layer_of(a)]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_the_twins_never_import_each_other():
    crossing = [f"{a} imports {b}" for a, targets in imports().items() for b in targets
                if {a.split(".")[0], b.split(".")[0]} == {"core_torch", "core_tf"}]
    assert not crossing, "\n".join(crossing)


def test_no_import_circle():
    """Tarjan's strongly connected components over the module graph: every one must be a single module."""
    graph, index, low, stack, on_stack, circles = imports(), {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(modules()):
        if v not in index:
            visit(v)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_twins_mirror_each_other_package_for_package():
    """The twin of any file is found at once: the same packages on both sides (files a twin lacks are
    listed here with why)."""
    only = {"core_torch": {"networks/linear.py", "runtime/compiled.py", "runtime/lr_schedule.py"},
            "core_tf": {"networks/layers.py", "runtime/module.py", "runtime/export.py", "runtime/serving_warmup.py",
                        "runtime/lr_schedule.py"}}
    files = {core: {str(p.relative_to(ROOT / core)) for p in (ROOT / core).rglob("*.py")} for core in only}
    assert files["core_torch"] - only["core_torch"] == files["core_tf"] - only["core_tf"]
