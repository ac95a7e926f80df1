"""Churn: random playouts of Go on a small board (in the spirit of
pyperformance's go, without its tree search).

    python go.py [N]                 (default 25 games on a 9x9 board)

Each move flood-fills groups to find liberties and captures, making sets,
lists and tuples that die at once; each game starts from a fresh board.
"""

from __future__ import annotations

import random
import sys
from typing import Dict, List, Set, Tuple

SIZE = 9
EMPTY, BLACK, WHITE = 0, 1, 2
Point = Tuple[int, int]


def neighbours(p: Point) -> List[Point]:
    x, y = p
    return [(a, b) for a, b in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1))
            if 0 <= a < SIZE and 0 <= b < SIZE]


class Board:
    def __init__(self) -> None:
        self.cells: Dict[Point, int] = {(x, y): EMPTY for x in range(SIZE) for y in range(SIZE)}
        self.captured = {BLACK: 0, WHITE: 0}

    def group(self, start: Point) -> Tuple[Set[Point], Set[Point]]:
        colour = self.cells[start]
        stones, liberties = {start}, set()
        todo = [start]
        while todo:
            for n in neighbours(todo.pop()):
                if self.cells[n] == EMPTY:
                    liberties.add(n)
                elif self.cells[n] == colour and n not in stones:
                    stones.add(n)
                    todo.append(n)
        return stones, liberties

    def legal(self, p: Point, colour: int) -> bool:
        if self.cells[p] != EMPTY:
            return False
        self.cells[p] = colour
        try:
            _, libs = self.group(p)
            if libs:
                return True
            other = WHITE if colour == BLACK else BLACK
            return any(self.cells[n] == other and not self.group(n)[1] for n in neighbours(p))
        finally:
            self.cells[p] = EMPTY

    def play(self, p: Point, colour: int) -> None:
        self.cells[p] = colour
        other = WHITE if colour == BLACK else BLACK
        for n in neighbours(p):
            if self.cells[n] == other:
                stones, libs = self.group(n)
                if not libs:
                    for s in stones:
                        self.cells[s] = EMPTY
                    self.captured[colour] += len(stones)

    def eye_like(self, p: Point, colour: int) -> bool:
        return all(self.cells[n] == colour for n in neighbours(p))


def playout(rng: random.Random, max_moves: int = 200) -> int:
    board = Board()
    colour = BLACK
    passes = 0
    for _ in range(max_moves):
        empties = [p for p, c in board.cells.items() if c == EMPTY]
        rng.shuffle(empties)
        for p in empties:
            if not board.eye_like(p, colour) and board.legal(p, colour):
                board.play(p, colour)
                passes = 0
                break
        else:
            passes += 1
            if passes == 2:
                break
        colour = WHITE if colour == BLACK else BLACK
    black = sum(1 for c in board.cells.values() if c == BLACK)
    return black + board.captured[BLACK] - board.captured[WHITE]


def main(games: int) -> None:
    rng = random.Random(42)
    scores = [playout(rng) for _ in range(games)]
    assert len(scores) == games


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 25)
