"""Words a user bringing their own models read: what a refused budget cannot hold, and the
--budget help's rule for the grouped sweeps."""
import re

import pytest

from hubensemble import sweeps
from hubensemble.errors import HubensembleError


@pytest.mark.parametrize("sweep, group, groups", [
    ("default", "module", "modules"), ("probe", "module", "modules"),
    ("aug", "augmentation family", "augmentation families")])
def test_refused_budget_says_one_what(sweep, group, groups):
    # "budget 2 cannot hold one" did not say one what: one group's 4 trials.
    with pytest.raises(HubensembleError) as e:
        sweeps.check_budget(sweep, 2)
    said = str(e.value)
    assert f"(one: one {group}'s 4 trials; K {groups} need a budget of 4×K)" in said, said
    sweeps.check_budget(sweep, 4)  # the real rule: 4 holds one group
    sweeps.check_budget("hyper", 1)  # single trials: any budget


def test_budget_help_says_grouped_sweeps_need_four(in_process):
    code, out, err = in_process("fit", "--help")
    assert code == 0, err
    help_text = " ".join(out.split())
    budget = re.search(r"--budget L (.*?) --modules", help_text).group(1)
    assert "the default and probe sweeps run 4 trials per module" in budget, budget
    assert "so they need 4 or more (4×K for K modules)" in budget, budget
