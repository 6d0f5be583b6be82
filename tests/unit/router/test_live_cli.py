from serving.router.live import configurations


def test_configurations_pick_cheapest_and_strongest_then_policies():
    models = [{"id": "big", "petit": {"tier": "large", "price_per_replica_hour": 2.0}},
              {"id": "tiny", "petit": {"tier": "small", "price_per_replica_hour": 0.1}},
              {"id": "auto", "petit": {"alias": True}}]
    assert configurations(models, ["learned"]) == [("tiny only", "tiny", None), ("big only", "big", None),
                                                   ("auto (learned)", "auto", "learned")]
