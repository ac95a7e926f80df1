"""Region reservation, with the platform calls real (POSIX) or mocked (Windows)."""

import ctypes
import mmap
import os
import sys

import pytest

from bump_global import _region

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX mmap")


@posix_only
def test_reserve_posix_gives_private_zeroed_writable_memory():
    res = _region.reserve_posix(_region.round_size(4 << 20))
    assert res.method == "mmap" and res.committed == res.size == 4 << 20
    assert res.base % mmap.PAGESIZE == 0
    assert ctypes.string_at(res.base, 4096) == bytes(4096)
    ctypes.memset(res.base + res.size - 16, 0xAB, 16)
    assert ctypes.string_at(res.base + res.size - 16, 16) == b"\xab" * 16


@posix_only
def test_reserve_far_above_ram_succeeds():
    # 64 GiB: refused under overcommit mode 0 without MAP_NORESERVE.
    res = _region.reserve(64 << 30)
    assert res.size == 64 << 30 and res.base


@posix_only
def test_incremental_reservation_starts_uncommitted():
    res = _region.reserve(8 << 20, incremental=True)
    assert res.method == "mmap+mprotect"
    assert (res.committed, res.commit_step) == (0, _region.COMMIT_STEP)


class FakeFunc:
    def __init__(self, results):
        self.results = list(results)
        self.calls = []
        self.restype = self.argtypes = None

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


@posix_only
def test_posix_falls_back_to_prot_none_then_reports_the_error():
    fake_mmap = FakeFunc([OSError(12, "Cannot allocate memory"), "mapping"])
    res = _region.reserve_posix(1 << 30, mmap_fn=fake_mmap, address=lambda m: 0x7F0000000000)
    assert res.method == "mmap+mprotect" and res.base == 0x7F0000000000
    assert res.mapping == "mapping" and res.committed == 0
    (args1, kw1), (args2, kw2) = fake_mmap.calls
    assert args1 == args2 == (-1, 1 << 30)
    assert kw1["prot"] == mmap.PROT_READ | mmap.PROT_WRITE and kw2["prot"] == 0
    for kw in (kw1, kw2):
        assert kw["flags"] & mmap.MAP_PRIVATE and kw["flags"] & mmap.MAP_ANONYMOUS
        assert not kw["flags"] & getattr(mmap, "MAP_SHARED", 1)

    failing = FakeFunc([OSError(12, "Cannot allocate memory"), OSError(12, "no room")])
    with pytest.raises(_region.ReserveError, match="no room"):
        _region.reserve_posix(1 << 30, mmap_fn=failing)


def test_map_noreserve_per_platform(monkeypatch):
    monkeypatch.delattr(mmap, "MAP_NORESERVE", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _region.map_noreserve() == 0  # Linux's 0x4000 means something else there
    monkeypatch.setattr(sys, "platform", "linux")
    for machine, flag in (("x86_64", 0x4000), ("aarch64", 0x4000), ("ppc64le", 0x40),
                          ("mips64", 0x400), ("sparc64", 0x40)):
        fake = os.uname_result(("Linux", "host", "6.0", "#1", machine))
        monkeypatch.setattr(_region.os, "uname", lambda fake=fake: fake)
        assert _region.map_noreserve() == flag, machine


class FakeKernel32:
    def __init__(self, results):
        self.VirtualAlloc = FakeFunc(results)


def test_windows_reserves_then_commits_only_a_first_step(monkeypatch):
    monkeypatch.setattr(ctypes, "get_last_error", lambda: 8, raising=False)
    k32 = FakeKernel32([0x10000000000, 0x10000000000])
    res = _region.reserve_windows(4 << 30, kernel32=k32)
    assert k32.VirtualAlloc.restype is ctypes.c_void_p
    assert k32.VirtualAlloc.argtypes[0] is ctypes.c_void_p
    (reserve_call, _), (commit_call, _) = k32.VirtualAlloc.calls
    assert reserve_call == (None, 4 << 30, _region.MEM_RESERVE, _region.PAGE_NOACCESS)
    assert commit_call == (0x10000000000, _region.COMMIT_STEP, _region.MEM_COMMIT,
                           _region.PAGE_READWRITE)
    assert (res.base, res.size, res.committed) == (0x10000000000, 4 << 30, _region.COMMIT_STEP)
    assert res.commit_step == _region.COMMIT_STEP

    with pytest.raises(_region.ReserveError, match="MEM_RESERVE"):
        _region.reserve_windows(4 << 30, kernel32=FakeKernel32([None]))
    with pytest.raises(_region.ReserveError, match="MEM_COMMIT"):
        _region.reserve_windows(4 << 30, kernel32=FakeKernel32([0x10000000000, None]))


def test_round_size_uses_the_platform_granularity(monkeypatch):
    assert _region.round_size(1) == _region.granularity()
    monkeypatch.setattr(sys, "platform", "win32")
    assert _region.round_size((1 << 20) + 1) == (1 << 20) + (64 << 10)
