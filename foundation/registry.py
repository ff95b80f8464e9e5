"""One generic name -> item registry, so every registry of ganas registers, lists and refuses alike."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar, overload

from .errors import AlreadyRegisteredError, GanasError

T = TypeVar("T")
_NO_ITEM: object = object()


class Registry(Generic[T]):
    """Items of one kind by name: architectures, search spaces, metrics, ...

    ``noun`` names the kind in messages ("architecture", "search space"); ``error`` is the typed
    error raised for an unknown name, whose message lists the registered names followed by
    ``hint`` as is (e.g. ", or the path of a TorchScript file"). ``sort``: list names sorted,
    else in registration order (when the order means something: layouts are detected in it).
    ``key``: the attribute that names an item, for :meth:`add` (items that carry their own name).
    """

    def __init__(self, noun: str, error: type[Exception] = GanasError, *, hint: str = "",
                 sort: bool = True, key: str | None = None) -> None:
        self.noun = noun
        self.error = error
        self.hint = hint
        self.sort = sort
        self.key = key
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, item: T) -> T: ...

    def register(self, name, item=_NO_ITEM):  # type: ignore[no-untyped-def]
        """Add ``item`` under ``name`` and return it; without ``item``, a decorator doing so.

        A name already taken raises :class:`AlreadyRegisteredError`.
        """
        if item is _NO_ITEM:
            return lambda decorated: self.register(name, decorated)
        if name in self._items:
            raise AlreadyRegisteredError(f"{self.noun} {name!r} is already registered")
        self._items[name] = item
        return item

    def add(self, item: T) -> T:
        """Register ``item`` under its own name (the ``key`` attribute); usable as a class decorator."""
        if self.key is None:
            raise TypeError(f"the {self.noun} registry names no key attribute; use register(name, item)")
        return self.register(getattr(item, self.key), item)

    def unregister(self, name: str) -> T:
        """Remove and return the item under ``name`` (for tests and plug-ins that clean up)."""
        return self._items.pop(name)

    def get(self, name: str) -> T:
        """The item under ``name``; an unknown name raises ``error`` listing the registered ones."""
        try:
            return self._items[name]
        except KeyError:
            names = ", ".join(self.names()) or "none"
            raise self.error(f"unknown {self.noun} {name!r}; registered: {names}{self.hint}") from None

    def names(self) -> list[str]:
        """The registered names, sorted or in registration order (see the class docstring)."""
        return sorted(self._items) if self.sort else list(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs in the order of :meth:`names`."""
        return [(name, self._items[name]) for name in self.names()]

    def values(self) -> list[T]:
        """The items in the order of :meth:`names`."""
        return [self._items[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.noun!r}: {', '.join(self.names())})"
