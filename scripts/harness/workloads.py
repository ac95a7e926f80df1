"""The workload scripts of ``scripts/workloads/``, as data (bench.py's families
``startup``, ``build`` and ``churn``).

To add one, put the script in ``scripts/workloads/`` and a :class:`Workload` row
here: its full-size arguments and its ``--quick`` ones.  ``{big_json}`` in the
arguments is the generated JSON file (``BIG_JSON_MB`` megabytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

WORKLOAD_DIR = Path(__file__).resolve().parent.parent / "workloads"


@dataclass(frozen=True)
class Workload:
    name: str
    family: str  # "startup", "build" or "churn"
    what: str
    script: str
    args: Tuple[str, ...] = ()
    quick_args: Tuple[str, ...] = ()
    default: bool = True  # run unless --workloads names others


WORKLOADS: Tuple[Workload, ...] = (
    Workload("startup", "startup", "empty script: start-up and exit", "startup.py"),
    Workload("tuples_list", "build", "list of 5M (i, 2*i) tuples", "tuples_list.py",
             ("5000000",), ("50000",)),
    Workload("dict_str", "build", "dict of 2M str(i) -> i", "dict_str.py",
             ("2000000",), ("20000",)),
    Workload("json_loads_big", "build", "json.loads of a ~100 MB document",
             "json_loads_big.py", ("{big_json}",), ("{big_json}",)),
    Workload("ast_compile", "build", "ast.parse + compile of 2 MiB of source",
             "ast_compile.py", ("2048",), ("32",)),
    Workload("nested_serialise", "build", "100k nested records, json.dumps + pickle.dumps",
             "nested_serialise.py", ("100000",), ("1000",)),
    Workload("build_tuples", "build", "build_tuples.py (list of tuples, default size)",
             "build_tuples.py", (), ("50000",), default=False),
    Workload("temporaries", "churn", "10M x = (i, str(i))", "temporaries.py",
             ("10000000",), ("100000",)),
    Workload("json_loads_small", "churn", "3 small JSON documents parsed 40k times",
             "json_loads_small.py", ("40000",), ("400",)),
    Workload("raytrace", "churn", "ray tracer, 300x300 image", "raytrace.py",
             ("300",), ("20",)),
    Workload("go", "churn", "25 random Go playouts, 9x9", "go.py", ("25",), ("1",),
             default=False),
    Workload("deltablue", "churn", "constraint solver, 60 rounds", "deltablue.py",
             ("60",), ("2",)),
    Workload("richards", "churn", "task scheduler simulation, 40 rounds", "richards.py",
             ("40",), ("2",), default=False),
)
BIG_JSON_MB = {"full": "100", "quick": "1"}
