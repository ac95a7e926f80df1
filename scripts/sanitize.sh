#!/usr/bin/env bash
# Does the C core have memory errors or undefined behaviour?  AddressSanitizer +
# UndefinedBehaviorSanitizer over the test suite, and valgrind over a workload.
#
#   scripts/sanitize.sh [--python PYTHON] [--asan-only | --valgrind-only] [-- PYTEST_ARGS...]
#
# 1. asan: copies the source tree to a temporary directory (never builds in the work tree,
#    whose in-place extension modules other checkouts and venvs may use), makes a venv
#    there, builds bump_global/_core.c with -fsanitize=address,undefined and runs the test
#    suite with libasan preloaded into every Python process (the tests' subprocesses
#    included).  Leak detection is off: CPython does not free everything at exit.  Any
#    ASan or UBSan report fails the run; reports are also collected from log files, so a
#    report from a subprocess whose output a test did not show still counts.
# 2. valgrind: a plain -O1 -g build of the copy, and a short workload (threads, fork,
#    realloc in every domain, blocks from before the install, calloc, exhaustion) under
#    valgrind memcheck with PYTHONMALLOC=malloc.
#
# Needs a C compiler with libasan/libubsan (gcc or clang) and valgrind
# (Debian/Ubuntu: apt-get install valgrind).  The venv gets pytest, psutil and hypothesis
# from the package index, plus numpy, msgpack and lxml when they can be installed.
# Environment: SANITIZE_KEEP=1 keeps the temporary directory.  Under ASan the default
# pytest arguments leave out the two tests that fork while threads run (see below).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="python3"
run_asan=1
run_valgrind=1
pytest_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        --asan-only) run_valgrind=0; shift ;;
        --valgrind-only) run_asan=0; shift ;;
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ ${#pytest_args[@]} -eq 0 ]]; then
    # Deselected under ASan, for reasons of the ASan runtime, not of the code under test:
    # - a child forked while other threads run can deadlock inside the ASan runtime (its
    #   thread-registry lock is not reset at fork; seen with GCC 12's libasan); valgrind
    #   runs fork below;
    # - the region refusal test caps the address space (RLIMIT_AS), where ASan cannot map
    #   its shadow memory;
    # - the compare CLI strips LD_PRELOAD from the runs it starts (it chooses allocators
    #   with it), and an ASan-built extension cannot load without the preloaded runtime.
    deselect="not fork_while_threads and not fork_repeatedly_while_threads"
    deselect="$deselect and not cannot_be_reserved and not test_through_the_cli"
    pytest_args=(-q -p no:cacheprovider tests -k "$deselect")
fi

cc="${CC:-cc}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bump-sanitize.XXXXXX")"
cleanup() {
    if [[ "${SANITIZE_KEEP:-0}" == 1 ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

copy_tree() {  # copy_tree DEST: the tracked and untracked (not ignored) files, no builds
    mkdir -p "$1"
    if git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$here" && git ls-files -co --exclude-standard -z \
            | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$1" -xf -
    else
        tar -C "$here" --exclude='*.so' --exclude=build --exclude='*.egg-info' \
            --exclude='.venv*' -cf - . | tar -C "$1" -xf -
    fi
    find "$1" -name '*.so' -delete
}

make_venv() {  # make_venv DIR
    "$python" -m venv "$1"
    "$1/bin/python" -m pip install -q --disable-pip-version-check pytest psutil hypothesis \
        setuptools wheel
    "$1/bin/python" -m pip install -q --disable-pip-version-check numpy msgpack lxml \
        || echo "note: numpy/msgpack/lxml not installed; their tests will be skipped"
}

status=0

if [[ $run_asan == 1 ]]; then
    libasan="$("$cc" -print-file-name=libasan.so)"
    if [[ ! -e "$libasan" ]]; then
        echo "no libasan.so for $cc (Debian/Ubuntu: apt-get install gcc); skipping ASan" >&2
        status=1
    else
        echo "== ASan + UBSan: building a copy in $work/asan"
        copy_tree "$work/asan/src"
        make_venv "$work/asan/venv"
        flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
        flags="$flags -fno-omit-frame-pointer -g -O1"
        (cd "$work/asan/src" \
            && CC="$cc" CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
               "$work/asan/venv/bin/python" -m pip install --no-build-isolation \
               --disable-pip-version-check -e . >"$work/asan/build.log" 2>&1) \
            || { cat "$work/asan/build.log"; exit 1; }
        so="$(ls "$work"/asan/src/bump_global/_core*.so)"
        if ! nm -D "$so" | grep -q __asan; then
            echo "the extension was not built with ASan: $so" >&2
            exit 1
        fi
        mkdir -p "$work/asan/logs"
        echo "== ASan + UBSan: the test suite (pytest ${pytest_args[*]})"
        set +e
        (cd "$work/asan/src" \
            && LD_PRELOAD="$libasan" \
               ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:exitcode=86:log_path=$work/asan/logs/asan" \
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/asan/logs/ubsan" \
               "$work/asan/venv/bin/python" -m pytest "${pytest_args[@]}")
        tests=$?
        set -e
        reports=$(find "$work/asan/logs" -type f | wc -l)
        if [[ $reports -gt 0 ]]; then
            echo "== sanitizer reports ($reports):"
            for f in "$work"/asan/logs/*; do echo "--- $f"; head -60 "$f"; done
        fi
        echo "== ASan + UBSan: pytest exit $tests, $reports sanitizer report(s)"
        if [[ $tests -ne 0 || $reports -gt 0 ]]; then
            status=1
        fi
    fi
fi

if [[ $run_valgrind == 1 ]]; then
    if ! command -v valgrind >/dev/null; then
        echo "valgrind is not installed (Debian/Ubuntu: apt-get install valgrind); skipping" >&2
        status=1
    else
        echo "== valgrind memcheck: building a copy in $work/vg"
        copy_tree "$work/vg/src"
        "$python" -m venv "$work/vg/venv"
        "$work/vg/venv/bin/python" -m pip install -q --disable-pip-version-check psutil \
            setuptools wheel
        (cd "$work/vg/src" && CC="$cc" CFLAGS="-g -O1" \
            "$work/vg/venv/bin/python" setup.py build_ext --inplace >"$work/vg/build.log" 2>&1) \
            || { cat "$work/vg/build.log"; exit 1; }
        cat > "$work/vg/workload.py" <<'EOF'
import ctypes, json, os, sys, threading
api = ctypes.pythonapi
VP, SZ = ctypes.c_void_p, ctypes.c_size_t
funcs = {}
for dom, prefix in (("raw", "PyMem_Raw"), ("mem", "PyMem_"), ("obj", "PyObject_")):
    m = getattr(api, prefix + "Malloc"); m.restype, m.argtypes = VP, [SZ]
    c = getattr(api, prefix + "Calloc"); c.restype, c.argtypes = VP, [SZ, SZ]
    r = getattr(api, prefix + "Realloc"); r.restype, r.argtypes = VP, [VP, SZ]
    f = getattr(api, prefix + "Free"); f.restype, f.argtypes = None, [VP]
    funcs[dom] = (m, c, r, f)
old = {d: [funcs[d][0](300) for _ in range(200)] for d in funcs}   # before the install
for d, blocks in old.items():
    for p in blocks:
        ctypes.memset(p, 7, 300)
import bump_global
from bump_global import _testing
bump_global.install("64M", on_exhausted="fallback")
ok = True
for d, (malloc, calloc, realloc, free) in funcs.items():
    grown = [realloc(p, 5000) for p in old[d][:100]]     # forwarded to the old allocator
    ok &= all(ctypes.string_at(p, 300) == b"\7" * 300 for p in grown)
    for p in grown + old[d][100:]:
        free(p)
    blocks = [malloc(n) for n in (0, 1, 17, 4096, 70000)] + [calloc(100, 3), calloc(0, 8)]
    ok &= ctypes.string_at(blocks[5], 300) == bytes(300)
    q = realloc(blocks[3], 100000)
    ok &= q is not None
for domain in range(3):
    for size, new, interleave in ((100, 10000, 0), (10000, 100, 1), (3 << 20, 6 << 20, 1)):
        ok &= _testing.probe_realloc(domain, size, new, interleave)[2]
data = {str(i): [i, str(i) * 3] for i in range(20000)}
def work():
    for i in range(2000):
        b = bytearray(b"x" * (i % 500))
        b.extend(b"y" * 1000)
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
pid = os.fork()
more = [bytes([65]) * 200 for _ in range(5000)]
ok &= all(v == [int(k), k * 3] for k, v in data.items())
if pid == 0:
    os._exit(0 if ok else 1)
ok &= os.waitpid(pid, 0)[1] == 0
filler = [bytearray(1 << 16) for _ in range(2000)]    # past 64 MiB: the fallback serves
s = bump_global.stats()
ok &= s.fallback_allocations > 0
print(json.dumps({"ok": bool(ok), "used": s.used, "fallback": s.fallback_allocations,
                  "foreign_frees": s.foreign_frees, "foreign_reallocs": s.foreign_reallocs}))
sys.exit(0 if ok else 1)
EOF
        echo "== valgrind memcheck: a short workload (PYTHONMALLOC=malloc)"
        set +e
        (cd "$work/vg/src" && PYTHONMALLOC=malloc PYTHONPATH="$work/vg/src" \
            valgrind --tool=memcheck --error-exitcode=99 --leak-check=no \
            --trace-children=yes --child-silent-after-fork=no --num-callers=30 \
            --log-file="$work/vg/valgrind.%p.log" \
            "$work/vg/venv/bin/python" "$work/vg/workload.py")
        vg=$?
        set -e
        errors=0
        for f in "$work"/vg/valgrind.*.log; do
            summary="$(grep 'ERROR SUMMARY' "$f" || true)"
            echo "$(basename "$f"): ${summary#==*== }"
            n="$(echo "$summary" | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p')"
            if [[ -n "$n" && "$n" -gt 0 ]]; then
                errors=$((errors + n))
                sed -n '/Invalid\|uninitialised\|Mismatched\|overlap/,+25p' "$f" | head -120
            fi
        done
        echo "== valgrind memcheck: exit $vg, $errors error(s)"
        if [[ $vg -ne 0 || $errors -gt 0 ]]; then
            status=1
        fi
    fi
fi

if [[ $status -eq 0 ]]; then
    echo "sanitize: all clean"
else
    echo "sanitize: FAILED (see above)"
fi
exit $status
