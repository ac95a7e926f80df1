"""Build the C core and ship the start-up hook; everything else is in pyproject.toml.

``bump_global_activate.pth`` must land at the top of site-packages (site.py only
reads ``.pth`` files there).  A wheel gets it at the top of its build directory;
an editable (PEP 660) wheel gets it in the directory setuptools packs into the
wheel, which is the ``install`` command's ``install_lib`` during ``editable_wheel``.
"""

from __future__ import annotations

import os
import sys
from typing import List

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH = "bump_global_activate.pth"
HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithPth(build_py):
    """build_py that also puts the start-up ``.pth`` at the top of the wheel."""

    def run(self) -> None:
        super().run()
        source = os.path.join(HERE, PTH)
        if not getattr(self, "editable_mode", False):
            self.copy_file(source, os.path.join(self.build_lib, PTH), preserve_mode=False)
            return
        # editable_wheel: modules stay in the source tree, while files that must be
        # installed as they are go straight into the unpacked wheel (install_lib).
        target = self.get_finalized_command("install").install_lib
        if not target or not os.path.isdir(target):
            raise RuntimeError(
                f"cannot place {PTH} in the editable wheel (install_lib={target!r}): "
                "this setuptools is not supported, use setuptools>=64"
            )
        self.copy_file(source, os.path.join(target, PTH), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> List[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, PTH))
        return outputs


OPT = ["-O2"] if sys.platform != "win32" else ["/O2"]
# _core.c #includes its parts from bump_global/core/: list them so that editing
# any of them (a header included) rebuilds the extension.
CORE_PARTS = sorted(
    os.path.join("bump_global", "core", name)
    for name in os.listdir(os.path.join(HERE, "bump_global", "core"))
    if name.endswith((".c", ".h"))
)

setup(
    ext_modules=[
        # The allocator hooks: one translation unit.
        Extension("bump_global._core", sources=["bump_global/_core.c"], depends=CORE_PARTS,
                  extra_compile_args=OPT),
        # Test probes and raw allocator microbenchmarks, for tests/ and scripts/bench.py
        # (the runtime never imports it).
        Extension("bump_global._testing", sources=["bump_global/_testing.c"],
                  extra_compile_args=OPT),
        # The numpy data-memory handler (NEP 49); built without numpy headers.
        Extension("bump_global._numpy", sources=["bump_global/_numpy.c"], extra_compile_args=OPT),
    ],
    cmdclass={"build_py": BuildPyWithPth},
)
