"""The collector pause around parsing and recording: off inside, restored after, whatever happens inside."""

from __future__ import annotations

import gc

import pytest

from dosereg.core.gc_pause import collector_paused, collector_relaxed


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after(collector_on):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_an_exception(collector_on):
    with pytest.raises(ZeroDivisionError), collector_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_a_nested_pause_leaves_the_outer_pause_in_force(collector_on):
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector_on):
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_relaxed_collector_raises_the_threshold_and_restores_it():
    before = gc.get_threshold()
    with collector_relaxed(50_000):
        assert gc.get_threshold()[0] == 50_000 and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_relaxed_collector_still_frees_cycles(collector_on):
    class Node:
        pass

    with collector_relaxed(100):
        for _ in range(1_000):  # 2 000 objects in cycles: the young collections free them without being asked
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        alive = sum(type(o) is Node for o in gc.get_objects())
    assert alive < 200, f"{alive} of 2000 objects in cycles still alive"
