"""The routing board's follower and the autoscaler's plan -> routing-state mapping (no Ray started)."""

from __future__ import annotations

from autoscaler.routing_bridge import routing_changes
from autoscaler.snapshot import RoutingPlan
from serving.control.board import BoardFollower
from serving.router.state import RoutingStateHolder


class _Remote:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        async def call():
            return self.fn(*args)

        return call()


class FakeBoard:
    def __init__(self):
        self.version, self.changes = 0, {}
        self.read = _Remote(lambda: (self.version, self.changes))

    def publish(self, changes):
        self.version += 1
        self.changes = changes


def _plan(tiers, strong, down=0.0, constrained=True):
    return RoutingPlan(
        shares={},
        allowed_tiers=tiers,
        strong_share=strong,
        downgrade_share=down,
        expected_quality=0.0,
        reason="test",
        constrained=constrained,
    )


def test_constrained_plan_sets_tiers_and_strong_share():
    assert routing_changes(_plan(("small",), 0.0, 0.5)) == {
        "allowed_tiers": ["small"],
        "strong_share": 0.0,
        "downgrade_share": 0.0,
        "downgrade_share_by_priority": None,
    }
    assert routing_changes(_plan((), 0.3))["allowed_tiers"] is None


def test_unconstrained_plan_hands_routing_back_to_the_router():
    # GPUs suffice: the plan's max-quality shares (here all to large) must not become the router's share
    assert routing_changes(_plan(("large",), 1.0, constrained=False)) == {
        "allowed_tiers": None,
        "strong_share": None,
        "downgrade_share": 0.0,
        "downgrade_share_by_priority": None,
    }


async def test_follower_applies_each_newer_version_once():
    holder, board = RoutingStateHolder(), FakeBoard()
    follower = BoardFollower(holder)
    assert not await follower.poll_once(board)  # nothing published yet
    board.publish(routing_changes(_plan(("small",), 0.0)))
    assert await follower.poll_once(board)
    assert holder.get().allowed_tiers == frozenset({"small"}) and holder.get().strong_share == 0.0
    assert not await follower.poll_once(board)  # same version: not applied again
    holder.update(strong_share=0.7)  # a direct change stands until the next publish
    assert not await follower.poll_once(board) and holder.get().strong_share == 0.7


async def test_follower_skips_a_bad_change_set_and_keeps_going():
    holder, board = RoutingStateHolder(), FakeBoard()
    follower = BoardFollower(holder)
    board.publish({"strong_share": 7.0})
    assert not await follower.poll_once(board)
    assert holder.get().strong_share is None
    board.publish({"strong_share": 0.25})
    assert await follower.poll_once(board) and holder.get().strong_share == 0.25
