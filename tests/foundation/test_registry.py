"""The generic registry: one way to register, refuse a duplicate, list and look up by name."""
import pytest

from foundation.errors import AlreadyRegisteredError, GanasError
from foundation.registry import Registry


class WidgetError(GanasError):
    pass


def test_register_as_call_and_as_decorator_returns_the_item():
    widgets: Registry[object] = Registry("widget", WidgetError)
    item = object()
    assert widgets.register("plain", item) is item

    @widgets.register("decorated")
    def build():
        return 1

    assert build() == 1 and widgets.get("decorated") is build and widgets.get("plain") is item
    assert "plain" in widgets and "other" not in widgets and len(widgets) == 2


def test_a_duplicate_name_is_refused_and_the_first_item_kept():
    widgets: Registry[int] = Registry("widget", WidgetError)
    widgets.register("a", 1)
    with pytest.raises(AlreadyRegisteredError, match="widget 'a' is already registered"):
        widgets.register("a", 2)
    assert widgets.get("a") == 1
    assert issubclass(AlreadyRegisteredError, ValueError) and issubclass(AlreadyRegisteredError, GanasError)


def test_unknown_name_raises_the_registry_error_listing_the_choices():
    widgets: Registry[int] = Registry("widget", WidgetError, hint=", or give a file")
    widgets.register("b", 2)
    widgets.register("a", 1)
    with pytest.raises(WidgetError) as caught:
        widgets.get("c")
    assert type(caught.value) is WidgetError
    assert str(caught.value) == "unknown widget 'c'; registered: a, b, or give a file"
    with pytest.raises(WidgetError, match="registered: none"):
        Registry("gadget", WidgetError).get("x")


def test_names_sorted_or_in_registration_order():
    sorted_ones: Registry[int] = Registry("widget")
    ordered: Registry[int] = Registry("widget", sort=False)
    for name, value in (("z", 1), ("a", 2), ("m", 3)):
        sorted_ones.register(name, value)
        ordered.register(name, value)
    assert sorted_ones.names() == ["a", "m", "z"] and list(sorted_ones) == ["a", "m", "z"]
    assert ordered.names() == ["z", "a", "m"] and ordered.items() == [("z", 1), ("a", 2), ("m", 3)]
    assert ordered.values() == [1, 2, 3] and sorted_ones.values() == [2, 3, 1]
    with pytest.raises(GanasError, match="registered: z, a, m$"):
        ordered.get("q")


def test_unregister_removes_a_name():
    widgets: Registry[int] = Registry("widget")
    widgets.register("a", 1)
    assert widgets.unregister("a") == 1 and "a" not in widgets
    widgets.register("a", 2)
    assert widgets.get("a") == 2


def test_items_that_carry_their_name_register_under_it():
    from dataclasses import dataclass

    from foundation.registry import Registry

    @dataclass(frozen=True)
    class Entry:
        name: str

    keyed = Registry("thing", key="name")
    assert keyed.add(Entry("b")) == Entry("b") and keyed.get("b") == Entry("b") and keyed.names() == ["b"]
    with pytest.raises(TypeError, match="names no key attribute"):
        Registry("thing").add(Entry("c"))
