"""Churn: a small ray tracer (in the spirit of pyperformance's raytrace).

    python raytrace.py [SIZE]        (default 300: a SIZE x SIZE image)

Every vector operation makes a new short-lived Vec object, so the program
allocates millions of temporaries while its live set stays tiny.
"""

from __future__ import annotations

import math
import sys
from typing import List, Optional, Tuple


class Vec:
    __slots__ = ("x", "y", "z")

    def __init__(self, x: float, y: float, z: float) -> None:
        self.x, self.y, self.z = x, y, z

    def __add__(self, o: "Vec") -> "Vec":
        return Vec(self.x + o.x, self.y + o.y, self.z + o.z)

    def __sub__(self, o: "Vec") -> "Vec":
        return Vec(self.x - o.x, self.y - o.y, self.z - o.z)

    def scale(self, k: float) -> "Vec":
        return Vec(self.x * k, self.y * k, self.z * k)

    def dot(self, o: "Vec") -> float:
        return self.x * o.x + self.y * o.y + self.z * o.z

    def norm(self) -> "Vec":
        return self.scale(1.0 / math.sqrt(self.dot(self)))


class Sphere:
    def __init__(self, centre: Vec, radius: float, colour: Vec, mirror: float) -> None:
        self.centre, self.radius, self.colour, self.mirror = centre, radius, colour, mirror

    def hit(self, origin: Vec, direction: Vec) -> Optional[float]:
        oc = origin - self.centre
        b = oc.dot(direction)
        disc = b * b - oc.dot(oc) + self.radius * self.radius
        if disc < 0:
            return None
        root = math.sqrt(disc)
        for t in (-b - root, -b + root):
            if t > 1e-6:
                return t
        return None

    def normal(self, point: Vec) -> Vec:
        return (point - self.centre).norm()


SCENE = [
    Sphere(Vec(0.0, -1000.0, 0.0), 998.0, Vec(0.6, 0.6, 0.6), 0.2),
    Sphere(Vec(-1.5, 0.0, 6.0), 1.0, Vec(0.9, 0.2, 0.2), 0.4),
    Sphere(Vec(1.2, -0.5, 4.5), 0.8, Vec(0.2, 0.9, 0.3), 0.6),
    Sphere(Vec(0.3, 1.5, 7.0), 1.2, Vec(0.2, 0.3, 0.9), 0.1),
]
LIGHT = Vec(-5.0, 8.0, -3.0)


def closest(origin: Vec, direction: Vec) -> Tuple[Optional[Sphere], float]:
    best: Optional[Sphere] = None
    best_t = math.inf
    for sphere in SCENE:
        t = sphere.hit(origin, direction)
        if t is not None and t < best_t:
            best, best_t = sphere, t
    return best, best_t


def trace(origin: Vec, direction: Vec, depth: int) -> Vec:
    sphere, t = closest(origin, direction)
    if sphere is None:
        return Vec(0.1, 0.1, 0.15)
    point = origin + direction.scale(t)
    normal = sphere.normal(point)
    to_light = (LIGHT - point).norm()
    shadow, _ = closest(point, to_light)
    diffuse = 0.0 if shadow is not None else max(0.0, normal.dot(to_light))
    colour = sphere.colour.scale(0.1 + 0.9 * diffuse)
    if depth > 0 and sphere.mirror > 0:
        reflected = direction - normal.scale(2 * direction.dot(normal))
        colour = colour.scale(1 - sphere.mirror) + trace(point, reflected.norm(),
                                                         depth - 1).scale(sphere.mirror)
    return colour


def render(size: int) -> List[List[Vec]]:
    eye = Vec(0.0, 0.0, -1.0)
    image = []
    for row in range(size):
        line = []
        for col in range(size):
            target = Vec(col / size - 0.5, 0.5 - row / size, 0.0)
            line.append(trace(eye, (target - eye).norm(), 3))
        image.append(line)
    return image


def main(size: int) -> None:
    image = render(size)
    brightness = sum(p.x + p.y + p.z for line in image for p in line)
    assert brightness > 0


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
