/*
 * core/frames.c -- the calling thread's Python stack, read from inside an
 * allocator hook: no allocation, no reference taken, no GIL needed.
 *
 * A sample (sites.c) records where an allocation was made: the code object and
 * instruction offset of each Python frame of the thread that allocates.  The
 * public ways to get them (PyThreadState_GetFrame, PyFrame_GetBack) create
 * frame objects on 3.11+ -- they allocate, which a hook must never do -- so,
 * as CPython's own tracemalloc does, this file reads the interpreter's frame
 * structures: PyFrameObject chains before 3.11, _PyInterpreterFrame chains
 * (internal headers, Py_BUILD_CORE) from 3.11, skipping incomplete frames (a
 * call being set up; shims owned by the C stack).  The only file with
 * CPython-version #ifs.
 *
 * Which thread state.  With the GIL held (MEM/OBJ always, RAW mostly) the
 * current thread state is the caller's own.  A RAW call made without the GIL
 * (CPython releases it around blocking calls, and C extensions allocate from
 * their own threads) uses the thread's own state, found without the GIL
 * (PyGILState_GetThisThreadState): the thread is inside a C call, so its
 * frames cannot change under it, and they keep their code objects alive.  A
 * thread with no Python state (a C thread) has no Python stack: zero frames.
 *
 * Cost: a pointer chase per frame.
 */
#if PY_VERSION_HEX >= 0x030E0000
#  define Py_BUILD_CORE 1
#  include "internal/pycore_interpframe.h"
#  undef Py_BUILD_CORE
#elif PY_VERSION_HEX >= 0x030B0000
#  define Py_BUILD_CORE 1
#  include "internal/pycore_frame.h"
#  undef Py_BUILD_CORE
#else
#  include <frameobject.h>
#endif

typedef struct {
    PyCodeObject *code;
    int lasti;  /* bytes into the code, for PyCode_Addr2Line */
} frame_ref_t;

/* The calling thread's own state, or NULL (no Python state). */
static PyThreadState *
frames_thread_state(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *ts = PyThreadState_GetUnchecked();  /* thread-local: ours or NULL */
#elif PY_VERSION_HEX >= 0x030C0000
    PyThreadState *ts = _PyThreadState_UncheckedGet();  /* thread-local: ours or NULL */
#else
    /* The GIL holder's state (one global): ours only if it names this thread. */
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    if (ts != NULL && ts->thread_id != PyThread_get_thread_ident()) {
        ts = NULL;
    }
#endif
    return ts != NULL ? ts : PyGILState_GetThisThreadState();
}

/* Up to `max` frames of the calling thread into out[], the innermost first;
 * their number.  *more is set when the stack was deeper. */
static int
frames_walk(frame_ref_t *out, int max, int *more)
{
    int n = 0;
    *more = 0;
    PyThreadState *ts = frames_thread_state();
    if (ts == NULL) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030B0000
#  if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *f = ts->current_frame;
#  else
    _PyInterpreterFrame *f = ts->cframe != NULL ? ts->cframe->current_frame : NULL;
#  endif
    for (; f != NULL; f = f->previous) {
        if (_PyFrame_IsIncomplete(f)) {
            continue;
        }
        if (n == max) {
            *more = 1;
            break;
        }
#  if PY_VERSION_HEX >= 0x030D0000
#    if PY_VERSION_HEX >= 0x030E0000
        PyObject *executable = PyStackRef_AsPyObjectBorrow(f->f_executable);
#    else
        PyObject *executable = f->f_executable;
#    endif
        if (executable == NULL || !PyCode_Check(executable)) {
            continue;
        }
        out[n].code = (PyCodeObject *)executable;
#  else
        out[n].code = f->f_code;
#  endif
#  if PY_VERSION_HEX >= 0x030C0000
        out[n].lasti = PyUnstable_InterpreterFrame_GetLasti(f);
#  else
        out[n].lasti = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
#  endif
        n++;
    }
#else
    for (PyFrameObject *f = ts->frame; f != NULL; f = f->f_back) {
        if (n == max) {
            *more = 1;
            break;
        }
        out[n].code = f->f_code;
#  if PY_VERSION_HEX >= 0x030A0000
        out[n].lasti = f->f_lasti < 0 ? -1 : f->f_lasti * (int)sizeof(_Py_CODEUNIT);
#  else
        out[n].lasti = f->f_lasti;
#  endif
        n++;
    }
#endif
    return n;
}

/* The function's name: its qualified name from 3.11, its name before. */
static PyObject *
frames_code_name(PyCodeObject *code)
{
#if PY_VERSION_HEX >= 0x030B0000
    return code->co_qualname;
#else
    return code->co_name;
#endif
}

/* The code's line table object (tells two code objects apart, with the names). */
static PyObject *
frames_code_lines(PyCodeObject *code)
{
#if PY_VERSION_HEX >= 0x030A0000
    return code->co_linetable;
#else
    return code->co_lnotab;
#endif
}
