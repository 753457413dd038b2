"""Resources, chosen for the environment in one place (``REDWALL_ENV``: local | production).

local: everything under the data home (``REDWALL_HOME``).
production: the lake may live in an object store (``REDWALL_LAKE_URI``, credentials in
``REDWALL_STORAGE_*``).
Either way publishing needs ``REDWALL_PSEUDONYM_KEY``, except in a home made by ``redwall demo``.
Secrets only ever come from the environment.
"""

import os

from redwall.assets.resources import RedwallHome


def environment() -> str:
    env = os.environ.get("REDWALL_ENV", "local")
    if env not in ("local", "production"):
        raise ValueError(f"REDWALL_ENV must be 'local' or 'production', not {env!r}")
    return env


def resources_for_environment() -> dict[str, object]:
    if environment() == "production":
        if not os.environ.get("REDWALL_PSEUDONYM_KEY"):
            raise RuntimeError("production needs REDWALL_PSEUDONYM_KEY in the environment")
        return {"redwall": RedwallHome(lake_uri=os.environ.get("REDWALL_LAKE_URI"))}
    return {"redwall": RedwallHome()}
