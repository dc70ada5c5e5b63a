"""``db.new_id``: version 7 keys, in time order, never repeated, not even by a forked worker."""

from __future__ import annotations

import os
import time

from diversion.db import ID_STOCK, new_id


def test_keys_are_version_7_in_time_order_and_never_repeat() -> None:
    before = time.time_ns() // 1_000_000
    first = [new_id() for _ in range(ID_STOCK * 40)]
    time.sleep(0.002)
    later = new_id()
    keys = [*first, later]
    assert len(set(keys)) == len(keys)
    assert {key.version for key in keys} == {7}
    assert {key.variant for key in keys} == {"specified in RFC 4122"}
    assert all(before <= key.int >> 80 <= time.time_ns() // 1_000_000 for key in keys)  # made when
    assert later > max(first)  # a later millisecond sorts after
    assert len({key.int & ((1 << 62) - 1) for key in first}) == len(first)  # the random part varies


def test_a_forked_child_does_not_hand_out_its_parents_keys() -> None:
    new_id()  # the parent now holds a stock
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next keys, to the parent
        os.close(read)
        os.write(write, b"".join(new_id().bytes for _ in range(ID_STOCK)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        given = pipe.read()
    os.waitpid(child, 0)
    theirs = {given[start:start + 16] for start in range(0, len(given), 16)}
    ours = {new_id().bytes for _ in range(ID_STOCK)}
    assert len(theirs) == ID_STOCK
    assert not theirs & ours
