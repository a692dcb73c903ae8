"""The validation history: a bound a poisoned global model cannot move, a yardstick for tiny cohorts."""

import torch

from fedfleet.fl.validation import ServerKnowledge, UpdateSummary, ValidationHistory, validate_updates
from tests.fl.test_validation import PLAN, healthy, make, server


def observed(rounds, norms, updates=()):
    history = ValidationHistory(rounds, {"global_norms": [norms[0]]})
    for norm in norms[1:]:
        history.observe(torch.tensor([norm]), updates)
    return history


def test_one_poisoned_round_does_not_move_the_reference_norm():
    assert observed(10, [2.0, 2.5, 2.75, 500.0]).reference_norm == 2.5
    assert observed(10, [2.0, 500.0]).reference_norm == 2.0
    assert observed(1, [2.0, 500.0]).reference_norm == 500.0  # a one-round window follows the model
    assert observed(3, [2.0, 2.1, 9.0, 9.0, 9.0]).reference_norm == 9.0  # a sustained change is followed


def test_an_update_sized_to_an_exploded_global_model_is_still_rejected():
    exploded = torch.full((4,), 50.0)  # norm 100, after a poisoned round; the reference stays 2
    history = observed(10, [2.0, 100.0])
    big = make(99, torch.full((4,), 95 / 2))  # 9.5x the exploded norm
    knowledge = ServerKnowledge(exploded, server().num_samples, PLAN, history.reference_norm)
    accepted, rejected = validate_updates([*healthy(1), big], knowledge, 10)
    assert [u.client_id for u in accepted] == [0] and "global model's norm 2" in rejected[0].reason
    following = ServerKnowledge(exploded, server().num_samples, PLAN)  # the old rule: the current model
    assert len(validate_updates([*healthy(1), big], following, 10)[0]) == 2


def test_a_cohort_of_two_is_judged_against_recent_rounds():
    recent = tuple((0.2 * (i + 1), 0.2 * (i + 1)) for i in range(3))  # norms 0.2, 0.4, 0.6 (one step each)
    outlier = make(99, torch.full((4,), 4.0))  # norm 8: below 10x the global norm 2, 20x the recent median
    knowledge = ServerKnowledge(torch.ones(4), server().num_samples, PLAN, None, recent)
    accepted, rejected = validate_updates([*healthy(1), outlier], knowledge, 10)
    assert [u.client_id for u in accepted] == [0]
    assert [r.client_id for r in rejected] == [99] and "recent rounds" in rejected[0].reason
    without = validate_updates([*healthy(1), outlier], server(), 10)  # no history: nothing to compare with
    assert len(without[0]) == 2 and not without[1]


def test_a_cohort_of_three_or_more_ignores_recent_rounds():
    tiny = tuple((1e-6, 1e-6) for _ in range(20))
    knowledge = ServerKnowledge(torch.ones(4), server().num_samples, PLAN, None, tiny)
    accepted, rejected = validate_updates(healthy(4), knowledge, 10)  # pooled, 1e-6 would reject them all
    assert [u.client_id for u in accepted] == [0, 1, 2, 3] and not rejected


def test_the_history_round_trips_through_its_state():
    history = observed(3, [1.0, 2.0, 3.0, 4.0], [UpdateSummary.of(make(0, torch.full((4,), 0.5), local_steps=2))])
    restored = ValidationHistory(3, history.state_dict())
    assert restored.reference_norm == history.reference_norm == 3.0
    assert restored.recent_norms == history.recent_norms == ((1.0, 0.5),) * 3
