"""Churn: an operating-system task scheduler simulation (in the spirit of
pyperformance's richards): tasks exchange work packets through a scheduler.

    python richards.py [N]           (default 40: rounds of the simulation)

Packets are allocated, passed along and dropped constantly; each round builds
a fresh set of tasks, so the live set stays small.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Deque, Dict, List, Optional


class Packet:
    __slots__ = ("kind", "dest", "data")

    def __init__(self, kind: str, dest: int, data: List[int]) -> None:
        self.kind, self.dest, self.data = kind, dest, data


class Task:
    def __init__(self, ident: int, priority: int) -> None:
        self.ident = ident
        self.priority = priority
        self.inbox: Deque[Packet] = deque()
        self.handled = 0

    def run(self, sched: "Scheduler") -> None:
        raise NotImplementedError


class Idle(Task):
    def __init__(self, ident: int, count: int) -> None:
        super().__init__(ident, 0)
        self.count = count
        self.seed = 1

    def run(self, sched: "Scheduler") -> None:
        self.count -= 1
        if self.count <= 0:
            sched.stop = True
            return
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        dest = 1 + self.seed % 2
        sched.send(Packet("work", dest, [self.seed % 26 + i for i in range(4)]))


class Worker(Task):
    def run(self, sched: "Scheduler") -> None:
        while self.inbox:
            packet = self.inbox.popleft()
            self.handled += 1
            letters = "".join(chr(65 + (v % 26)) for v in packet.data)
            sched.send(Packet("device", 3 + self.ident % 2, [ord(c) for c in letters]))


class Device(Task):
    def run(self, sched: "Scheduler") -> None:
        while self.inbox:
            packet = self.inbox.popleft()
            self.handled += 1
            sched.checksum = (sched.checksum + sum(packet.data)) % 65521


class Scheduler:
    def __init__(self, count: int) -> None:
        self.tasks: Dict[int, Task] = {
            0: Idle(0, count), 1: Worker(1, 2), 2: Worker(2, 2),
            3: Device(3, 3), 4: Device(4, 3),
        }
        self.order = sorted(self.tasks.values(), key=lambda t: -t.priority)
        self.stop = False
        self.checksum = 0

    def send(self, packet: Packet) -> None:
        self.tasks[packet.dest].inbox.append(packet)

    def ready(self) -> Optional[Task]:
        for task in self.order:
            if task.inbox:
                return task
        return self.tasks[0]

    def run(self) -> int:
        while not self.stop:
            task = self.ready()
            assert task is not None
            task.run(self)
        return self.checksum


def main(rounds: int) -> None:
    sums = [Scheduler(10_000).run() for _ in range(rounds)]
    assert len(set(sums)) == 1


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
