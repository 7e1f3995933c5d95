"""common/dlist.py against a Python list model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.dlist import DList, DListNode

pytestmark = pytest.mark.since(12)


class Named(DListNode):
    __slots__ = ("name",)

    def __init__(self, name):
        super().__init__()
        self.name = name


@settings(max_examples=200, deadline=None)
@given(operations=st.lists(st.tuples(st.sampled_from(["push", "detach", "move"]), st.integers(0, 9)), max_size=60))
def test_against_list(operations):
    dlist, model = DList(), []
    nodes = [Named(i) for i in range(10)]
    for action, index in operations:
        node = nodes[index]
        if action == "push" and not node.in_list():
            dlist.push_back(node)
            model.append(index)
        elif action == "detach":
            DList.detach(node)
            if index in model:
                model.remove(index)
        elif action == "move":
            dlist.move_to_back(node)
            if index in model:
                model.remove(index)
            model.append(index)
        assert [n.name for n in dlist] == model
        assert bool(dlist) == bool(model)
        assert (dlist.front().name if dlist.front() else None) == (model[0] if model else None)


def test_detaching_while_iterating():
    dlist = DList()
    nodes = [Named(i) for i in range(6)]
    for node in nodes:
        dlist.push_back(node)
    for node in dlist:
        if node.name % 2 == 0:
            DList.detach(node)
    assert [n.name for n in dlist] == [1, 3, 5]
    assert not nodes[0].in_list() and nodes[1].in_list()
