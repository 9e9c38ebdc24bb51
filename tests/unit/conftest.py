"""Hypothesis profiles for the property tests of hostile-input parsers.

"ci" (the default) is derandomized: every run tries the same examples, so a failure in CI is
reproducible and a green run stays green. "fuzz" explores: BERTH_FUZZ=1 pytest tests/unit -k fuzz
runs many random examples per property, to hunt for new bugs locally.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("BERTH_FUZZ_EXAMPLES", "5000")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fuzz" if os.environ.get("BERTH_FUZZ") else "ci")
