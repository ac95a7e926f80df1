"""The one harness of the benchmark and measurement scripts (docs/measuring.md).

A package, not one module, because its parts change for different reasons and are
read apart: the scripts of ``scripts/`` are thin entry points (their command line
and what they print), and everything they share is here, one job per module:

- ``variants``: what a variant is (environment additions, a preloaded allocator, a
  command wrapper such as memray's, an engine build, pip requirements) and the named
  ones; bump_global's variables come from the package's one option list;
- ``builds``: copies of the engine built from this checkout (optionally patched,
  e.g. ``experiments/recycle.patch``), and ``--build NAME=DIR`` folders;
- ``workloads``: the scripts of ``scripts/workloads/`` as data;
- ``programs``: the real programs as data (inputs, command, what output to compare);
- ``venv``: the benchmark venv (programs, memray, this checkout) and the inputs;
- ``runner``: one run of a job under a variant through ``bump_global._launch.measure_child``
  (its output and exit status kept for the check against the reference variant), and
  the shuffled rounds of ``bump_global._launch.plan_rounds``;
- ``stats`` and ``report``: medians of per-round ratios with their spread, geometric
  means per family, and the Markdown of bench.py and real_programs.py.

The scripts import it as ``harness`` (``python scripts/X.py`` puts ``scripts/`` first
on ``sys.path``) and import bump_global from the interpreter that runs them, never
the reverse: install the checkout first (``pip install -e .``).  To add a variant,
add a :class:`harness.variants.Variant` to ``VARIANTS``; to add a real program, a
:class:`harness.programs.Program` to ``PROGRAMS``.
"""

try:
    import bump_global  # noqa: F401
except ImportError:  # pragma: no cover - a set-up problem, said in one line
    raise SystemExit("scripts: bump_global cannot be imported by this Python: install this "
                     "checkout first (pip install -e .)") from None
