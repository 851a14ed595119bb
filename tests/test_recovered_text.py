"""The prune-and-fine-tune status sentence: what came back never exceeds what was lost."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from explorer.ui.headline import Metric
from explorer.ui.panels import recovered

ACC = Metric("accuracy", True)
MSE = Metric("MSE", False)


def test_a_gain_beyond_the_loss_is_named_apart():
    # dense 95.0%, one-shot 93.6% (1.4 lost), fine-tuned 95.8%: 2.2 back, 0.8 more than lost
    assert recovered(ACC, 0.950, 0.936, 0.958) == "; recovered all 1.4 points lost (and 0.8 more)"
    assert recovered(ACC, 0.950, 0.936, 0.950) == "; recovered all 1.4 points lost"
    assert recovered(ACC, 0.950, 0.936, 0.946) == "; recovered 1.0 of 1.4 points"
    assert recovered(ACC, 0.950, 0.936, 0.9498) == "; recovered almost all of 1.4 points"
    assert recovered(ACC, 0.950, 0.936, 0.933) == "; recovered none of 1.4 points (0.3 more lost)"
    assert recovered(MSE, 1.0, 3.0, 0.5) == "; recovered all 2.0 lost (and 0.5 more)"


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_the_recovered_share_never_exceeds_the_loss(dense, pruned, final):
    text = recovered(ACC, dense, pruned, final)
    share = re.fullmatch(r"; recovered ([\d.]+) of ([\d.]+) points", text)
    if share:
        assert float(share[1]) < float(share[2]), text
    else:
        assert re.fullmatch(r"; (recovered (all|almost all of|none of) [\d.]+ points.*"
                            r"|one-shot pruning had lost nothing here)", text), text
