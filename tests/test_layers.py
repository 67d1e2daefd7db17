"""The shape ARCHITECTURE.md promises, beyond the import contracts in pyproject.toml:
no import cycles anywhere in the package (the contracts only order the layers)."""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = grimp.build_graph("rtorrentd", exclude_type_checking_imports=True)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for imported in sorted(imports[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(imports):
        visit(module, [])
    assert [] == cycles


def test_every_layer_package_is_only_a_docstring() -> None:
    # Importing `rtorrentd.engine.plan` must not drag in the rest of its layer.
    graph = grimp.build_graph("rtorrentd", exclude_type_checking_imports=True)
    packages = sorted(m for m in graph.modules if m.count(".") == 1 and graph.find_children(m))
    assert [] == [p for p in packages if graph.find_modules_directly_imported_by(p)]
