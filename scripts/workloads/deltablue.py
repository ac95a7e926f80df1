"""Churn: a one-way constraint solver (in the spirit of pyperformance's
deltablue): chains of variables linked by equality and scale constraints,
re-planned and re-solved whenever an input changes.

    python deltablue.py [N]          (default 60 rounds of both tests)

Every round builds fresh variables and constraints; planning makes lists,
sets and dicts that are dropped as soon as the plan has run.
"""

from __future__ import annotations

import sys
from typing import Dict, List


class Variable:
    __slots__ = ("name", "value", "constraints", "stay")

    def __init__(self, name: str, value: float = 0.0) -> None:
        self.name, self.value = name, value
        self.constraints: List["Constraint"] = []
        self.stay = False


class Constraint:
    def __init__(self, source: Variable, target: Variable, scale: float = 1.0,
                 offset: float = 0.0) -> None:
        self.source, self.target, self.scale, self.offset = source, target, scale, offset
        source.constraints.append(self)
        target.constraints.append(self)

    def execute(self) -> None:
        self.target.value = self.source.value * self.scale + self.offset


class Planner:
    def __init__(self, variables: List[Variable]) -> None:
        self.variables = variables

    def plan(self, changed: Variable) -> List[Constraint]:
        """Constraints to run, in order, after `changed` was edited."""
        order: List[Constraint] = []
        seen = {changed.name}
        frontier = [changed]
        while frontier:
            nxt = []
            for var in frontier:
                for c in var.constraints:
                    if c.source is var and c.target.name not in seen and not c.target.stay:
                        seen.add(c.target.name)
                        order.append(c)
                        nxt.append(c.target)
            frontier = nxt
        return order

    def edit(self, var: Variable, values: List[float]) -> Dict[str, float]:
        last: Dict[str, float] = {}
        for value in values:
            var.value = value
            for c in self.plan(var):
                c.execute()
            last = {v.name: v.value for v in self.variables[-3:]}
        return last


def chain_test(n: int) -> None:
    chain = [Variable("v%d" % i) for i in range(n)]
    for a, b in zip(chain, chain[1:]):
        Constraint(a, b)
    result = Planner(chain).edit(chain[0], [float(i) for i in range(20)])
    assert result["v%d" % (n - 1)] == 19.0


def projection_test(n: int) -> None:
    scale, offset = Variable("scale", 10.0), Variable("offset", 1000.0)
    scale.stay = offset.stay = True
    srcs = [Variable("src%d" % i, float(i)) for i in range(n)]
    dsts = [Variable("dst%d" % i) for i in range(n)]
    for s, d in zip(srcs, dsts):
        Constraint(s, d, scale.value, offset.value)
    planner = Planner(srcs + dsts)
    for s in srcs:
        planner.edit(s, [s.value + 1.0, s.value + 2.0])
    assert dsts[-1].value == (n - 1 + 2.0) * 10.0 + 1000.0


def main(rounds: int) -> None:
    for _ in range(rounds):
        chain_test(1000)
        projection_test(1000)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
