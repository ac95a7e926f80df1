"""The immutable record base of bump_global's small records (Config, Stats, ...).

Built on a metaclass instead of dataclasses, so that installing at start-up
(``BUMP_GLOBAL=1``) imports neither dataclasses nor typing.  It imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple


class _RecordType(type):
    """Makes the class annotations, in order, the fields (slots); a value is a default."""

    def __new__(mcls, name: str, bases: Tuple[type, ...], ns: Dict[str, Any]) -> "_RecordType":
        fields = tuple(f for f in ns.get("__annotations__", {}) if not f.startswith("_"))
        ns["_defaults"] = {field: ns.pop(field) for field in fields if field in ns}
        ns["_fields"] = fields
        ns["__slots__"] = fields
        return super().__new__(mcls, name, bases, ns)


class Record(metaclass=_RecordType):
    """An immutable record: no instance dict, so building one allocates little."""

    _fields: Tuple[str, ...]
    _defaults: Dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields")
        for name, value in zip(fields, args):
            object.__setattr__(self, name, value)
        for name in fields[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected fields {sorted(kwargs)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _asdict(self) -> Dict[str, Any]:
        """The fields as a dict, in order."""
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: Any) -> Any:
        """A copy with `changes` to some fields."""
        return type(self)(**{**self._asdict(), **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._asdict() == other._asdict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self._asdict().items()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._asdict().items())
        return f"{type(self).__name__}({fields})"
