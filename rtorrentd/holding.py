"""Frozen records whose instances hold in slots only the fields they need.

Why: some records exist once per torrent (`torrent.Torrent`, `engine.memory.Seen`,
`engine.times.Times`), and at 100,000 torrents a slot for every field, most of
them at their default, was megabytes at the top of a poll's memory. Such a record
class has no slot itself; each instance is of a subclass with a slot for each
field it holds, and reads the others from that subclass's class attributes.

`ByValue` makes every such instance one record like any other: equal, hashed,
copied and pickled by every field's value, whichever subclass holds them.
`Holders` makes and keeps the subclasses of a record whose optional fields are
held or not one by one (a bit each), and builds instances of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["ByValue", "Holders", "values_of"]

T = TypeVar("T")


def values_of(record: type) -> attrgetter[Any]:
    """Every field's value of a `record` (a dataclass), in the constructor's order."""
    return attrgetter(*(f.name for f in fields(record)))


class ByValue:
    """Equality, hash, copy and pickle by every field's value (`_values`), as the
    plain dataclass has them, for a record whose instances are of subclasses.
    `_record` is the record class: what compares equal, and what copy and pickle
    call with the values. The dataclass must be declared with `eq=False`."""

    __slots__ = ()
    _record: ClassVar[type]
    _values: ClassVar[attrgetter[Any]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self._record):
            return NotImplemented
        return self is other or self._values(self) == self._values(other)

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # copy and pickle: the constructor, with every field's value.
        return self._record, self._values(self)


_Put = Callable[[Any, object], None]


class Holders(Generic[T]):
    """The subclasses of `record` holding its required fields and those of
    `optional` (name, value when not held) whose bit is set in `held` (bit i for
    the i-th), each made on first use; the absent ones are class attributes."""

    def __init__(self, record: type[T], optional: Sequence[tuple[str, object]]) -> None:
        self._record = record
        self._names = tuple(f.name for f in fields(record))  # type: ignore[arg-type]
        self._optional = tuple(optional)
        self._made: list[tuple[type[T], tuple[tuple[_Put, int], ...]] | None]
        self._made = [None] * 2 ** len(self._optional)

    def new(self, held: int, values: Sequence[object]) -> T:
        """An instance holding the fields `held` says, from every field's value
        (`values`, in the constructor's order)."""
        kind, puts = self._made[held] or self._make(held)
        instance: T = object.__new__(kind)
        for put, index in puts:
            put(instance, values[index])
        return instance

    def _make(self, held: int) -> tuple[type[T], tuple[tuple[_Put, int], ...]]:
        absent = {
            name: value for bit, (name, value) in enumerate(self._optional) if not held >> bit & 1
        }
        indexes = tuple(i for i, name in enumerate(self._names) if name not in absent)
        record = self._record
        namespace: dict[str, object] = {
            "__slots__": tuple(self._names[i] for i in indexes),
            "__qualname__": record.__qualname__,
            "__module__": record.__module__,
            **absent,
        }
        kind = type(record.__name__, (record,), namespace)
        made = kind, tuple((kind.__dict__[self._names[i]].__set__, i) for i in indexes)
        self._made[held] = made
        return made
