"""The layering of wavehub's modules, read from the source with ``ast`` (nothing is imported).

Rules, over every ``import`` statement in a module (module level or inside a function, relative ones resolved):

(a) no import cycle between wavehub modules. Two kinds of module stand outside: the package ``wavehub/__init__``
    (lazy re-exports of the public API, loaded on first attribute access, so it may name anything) and the CLI
    (``wavehub.cli*`` and ``__main__``, the top layer, which nothing below imports);
(b) ``wavehub.methods`` (pure tensor code) imports no wavehub module outside ``wavehub.methods`` except
    ``wavehub.errors``, the leaf every layer may use;
(c) no module imports another module's ``_private`` name, by ``from m import _name`` or as ``m._name``.

A violation names the modules involved; the self-tests run the same checker on a tiny synthetic package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import wavehub

ROOT = Path(wavehub.__file__).resolve().parent


@dataclass
class Graph:
    """Import edges between the modules of one package, and the private names each module reaches."""

    package: str
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: list[tuple[str, str]] = field(default_factory=list)  # (importer, "module._name")


def _module_name(root: Path, package: str, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def build_graph(root: Path) -> Graph:
    """Parse every ``*.py`` under ``root`` (a package directory) into a :class:`Graph`."""
    g = Graph(root.name)
    for path in sorted(root.rglob("*.py")):
        g.modules[_module_name(root, g.package, path)] = path
    for mod, path in g.modules.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        edges = g.edges.setdefault(mod, set())
        aliases: dict[str, str] = {}  # local name -> wavehub module it is bound to
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == g.package or a.name.startswith(g.package + "."):
                        target = _existing(g, a.name)
                        edges.add(target)
                        if a.asname:
                            aliases[a.asname] = target
                        if any(_is_private(p) for p in a.name.split(".")[1:]):
                            g.private.append((mod, a.name))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = here.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if not (base == g.package or base.startswith(g.package + ".")):
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in g.modules:  # a submodule: the edge goes to it
                        edges.add(sub)
                        aliases[a.asname or a.name] = sub
                        if _is_private(a.name):
                            g.private.append((mod, sub))
                    else:  # a name defined in ``base``
                        edges.add(_existing(g, base))
                        if _is_private(a.name):
                            g.private.append((mod, f"{base}.{a.name}"))
        for node in ast.walk(tree):  # ``m._name`` on a module bound above
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _is_private(node.attr)
            ):
                g.private.append((mod, f"{aliases[node.value.id]}.{node.attr}"))
        edges.discard(mod)
    return g


def _existing(g: Graph, name: str) -> str:
    """``name`` or its closest enclosing module in the package (``wavehub.x.func`` -> ``wavehub.x``)."""
    while name not in g.modules and "." in name:
        name = name.rpartition(".")[0]
    return name


def _outside(g: Graph, mod: str) -> bool:
    """Modules that stand outside the cycle rule: the package's lazy re-exports and the CLI on top."""
    leaf = mod[len(g.package) + 1 :]
    return mod == g.package or leaf == "__main__" or leaf == "cli" or leaf.startswith(("cli_", "cli."))


def find_cycle(g: Graph) -> list[str] | None:
    """One import cycle among the modules rule (a) covers, as a path that ends where it starts; None if none."""
    nodes = {m for m in g.modules if not _outside(g, m)}
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.edges.get(m, ())):
            if n not in nodes:
                continue
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(nodes):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def layer_violations(g: Graph, inner: str = "methods", allowed: tuple[str, ...] = ("errors",)) -> list[str]:
    """Imports from ``<package>.<inner>`` of package modules outside it (other than ``allowed``)."""
    pkg = f"{g.package}.{inner}"
    ok = {f"{g.package}.{a}" for a in allowed}
    out = []
    for m, targets in sorted(g.edges.items()):
        if m == pkg or m.startswith(pkg + "."):
            out += [
                f"{m} -> {t}" for t in sorted(targets) if not (t == pkg or t.startswith(pkg + ".") or t in ok)
            ]
    return out


def private_imports(g: Graph) -> list[str]:
    return sorted({f"{m} uses {name}" for m, name in g.private})


# ------------------------------------------------------------------------------------------------ wavehub


def test_no_import_cycle():
    cycle = find_cycle(build_graph(ROOT))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_methods_import_only_methods_and_errors():
    assert layer_violations(build_graph(ROOT)) == []


def test_no_private_name_crosses_modules():
    assert private_imports(build_graph(ROOT)) == []


def test_graph_sees_the_real_imports():
    """The checker reads real edges (a checker that saw nothing would pass every rule)."""
    g = build_graph(ROOT)
    assert "wavehub.methods.wave" in g.edges["wavehub.materialize"] | g.edges["wavehub.methods"]
    assert "wavehub.errors" in g.edges["wavehub.methods"]
    assert "wavehub.methods.memory" in g.edges["wavehub.methods.kron"]  # ``from . import memory``
    assert "wavehub.methods" in g.edges["wavehub.materialize"]  # function-level import


# ------------------------------------------------------------------------------------------- self-tests


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", "errors.py": "", "methods/__init__.py": "", **files}.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_checker_finds_a_cycle(tmp_path):
    root = _tree(
        tmp_path,
        {"a.py": "from . import b\n", "b.py": "def f():\n    from .c import g\n", "c.py": "import pkg.a\n"},
    )
    assert find_cycle(build_graph(root)) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def test_checker_exempts_the_package_and_the_cli(tmp_path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "from . import a\n",
            "a.py": "import pkg\nfrom . import cli\n",
            "cli.py": "from . import a\n",
        },
    )
    assert find_cycle(build_graph(root)) is None


def test_checker_finds_a_layer_violation(tmp_path):
    root = _tree(
        tmp_path,
        {
            "spec.py": "",
            "methods/w.py": "from ..errors import E\nfrom ..spec import S\nfrom . import k\n",
            "methods/k.py": "",
        },
    )
    assert layer_violations(build_graph(root)) == ["pkg.methods.w -> pkg.spec"]


def test_checker_finds_private_names(tmp_path):
    root = _tree(
        tmp_path,
        {
            "a.py": "_x = 1\n__all__ = []\n",
            "b.py": "from .a import _x, __all__\nfrom . import a\nprint(a._x)\n",
        },
    )
    assert private_imports(build_graph(root)) == ["pkg.b uses pkg.a._x"]
