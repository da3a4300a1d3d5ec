"""import-linter contracts of our own (see `[tool.importlinter]` in pyproject.toml).

- `max_cycle`: no import cycle in the package longer than `max_modules` modules (found as
  strongly connected components of the module import graph).
- `only_under`: an external package is imported only by modules under the given packages
  (e.g. temporalio only by `tether.engine` and `tether.testing`), whatever modules are added.
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def strongly_connected(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The import cycles among `package`'s modules, as groups of modules that reach each other."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit)
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group))

    for m in modules:
        if m not in index:
            visit(m)
    return [g for g in groups if len(g) > 1]


class MaxCycleContract(Contract):
    """No import cycle in `package` longer than `max_modules` modules."""

    package = fields.StringField()
    max_modules = fields.IntegerField(default=2)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        limit = int(self.max_modules)  # type: ignore[call-overload]
        too_long = [g for g in strongly_connected(graph, str(self.package)) if len(g) > limit]
        return ContractCheck(kept=not too_long, metadata={"cycles": too_long, "limit": limit})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for group in check.metadata["cycles"]:
            output.print_error(f"{len(group)} modules import each other in a cycle "
                               f"(at most {check.metadata['limit']} may): {', '.join(group)}")
            output.new_line()


class OnlyUnderContract(Contract):
    """`external` is imported only by modules under `allowed` (within `package`)."""

    package = fields.StringField()
    external = fields.StringField()
    allowed = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        allowed = [str(a) for a in self.allowed]  # type: ignore[attr-defined]
        external, package = str(self.external), str(self.package)
        found: list[tuple[str, int, str]] = []
        for m in sorted(graph.modules):
            if not (m == package or m.startswith(package + ".")):
                continue
            if any(m == a or m.startswith(a + ".") for a in allowed):
                continue
            for imported in graph.find_modules_directly_imported_by(m):
                if imported == external or imported.startswith(external + "."):
                    for detail in graph.get_import_details(importer=m, imported=imported):
                        found.append((m, int(detail["line_number"]), str(detail["line_contents"])))
        return ContractCheck(kept=not found, metadata={"found": found, "allowed": allowed})

    def render_broken_contract(self, check: ContractCheck) -> None:
        where = " or ".join(check.metadata["allowed"])
        for module, line, code in check.metadata["found"]:
            output.print_error(f"{module}:{line} imports {self.external} (`{code}`); only {where} may")
            output.new_line()

