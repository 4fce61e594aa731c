"""What of a simulator spec names its output: new options at their defaults are left out.

Fields added to `SimulatorSpec` after runs were published would otherwise change every
fingerprint (and every fit's settings) although the output is the same; they are
dropped while at their defaults, so published runs keep their names and their fits stay
reusable. Set to anything else they count like every other field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mop_bench.picle_spec import PicleSpec

#: Fields added after runs were published. At their default they leave a fingerprint
#: as it was (the output is the same), so published runs keep their names; set to
#: anything else they enter it like every other field.
_NEW_AT_DEFAULT: dict[str, dict[str, Any]] = {
    "simulator": {
        "label_prior": "population",
        "persona_label_match": False,
        "exemplar_selection": "seeded",
        "picle": dataclasses.asdict(PicleSpec()),
        "template": {},
    },
    # A scoring setting: at its default (a changed behaviour, unlike the fields above)
    # an earlier run keeps its name and generations, and the score stage scores it again
    # because the metric settings recorded in its metrics.json differ (scoring.py).
    "metrics": {"golden_cut": "budget"},
}


def simulator_identity(sim: dict[str, Any]) -> dict[str, Any]:
    """A simulator spec (as JSON) without the fields added after runs were published
    while they are at their defaults: what fit settings and fingerprints record, so
    that a new option leaves every earlier run's artifacts reusable."""
    payload = {"simulator": dict(sim)}
    for section in _NEW_AT_DEFAULT:
        payload.setdefault(section, {})
    drop_new_defaults(payload)
    return payload["simulator"]


def drop_new_defaults(payload: dict[str, Any]) -> None:
    # PICLe's settings shape the output only with `exemplar_selection: picle`; then they
    # always enter the fingerprint (a changed default must not reuse an old run's name).
    picle_used = payload["simulator"].get("exemplar_selection") == "picle"
    for section, defaults in _NEW_AT_DEFAULT.items():
        for key, default in defaults.items():
            if section == "simulator" and key == "picle":
                if not picle_used:
                    payload[section].pop(key, None)
            elif payload[section].get(key) == default:
                payload[section].pop(key, None)
