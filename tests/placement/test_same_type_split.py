"""Consecutive stages on one device type (issue 16): not reachable yet, so strict xfail."""

from pathlib import Path

import pytest

from fedfleet.placement import PlacementProblem
from fedfleet.placement.catalog import load_catalog
from fedfleet.placement.planners import DynamicProgrammingPlanner, GeneticPlanner
from fedfleet.placement.profile import load_profile_table

CONFIGS = Path(__file__).parents[2] / "configs" / "placement"


def _transformer(target: float) -> PlacementProblem:
    catalog = load_catalog(CONFIGS / "cloud.yaml").with_job(batch_size=256, samples=1e9,
                                                            throughput_target=target)
    return PlacementProblem(load_profile_table(CONFIGS / "transformer_small.csv"), catalog)


@pytest.mark.xfail(strict=True, reason="the merge rule fuses adjacent same-type stages")
@pytest.mark.parametrize(("target", "split_cost"), [(8000, 569.0), (12000, 549.3)])
@pytest.mark.parametrize("planner", [DynamicProgrammingPlanner, GeneticPlanner])
def test_a_same_type_split_is_found_where_it_is_cheaper(planner, target, split_cost):
    plan = planner().fit(_transformer(target)).plan_
    assert plan.cost <= split_cost * 1.001
