"""Resources, chosen for the environment in one place (``REDWALL_ENV``: local | production).

local: everything under the data home (``REDWALL_HOME``).
production: the lake may live in an object store (``REDWALL_LAKE_URI``, credentials in
``REDWALL_STORAGE_*``).
Either way publishing needs ``REDWALL_PSEUDONYM_KEY`` (:class:`PseudonymKey`), except in a home made
by ``redwall demo``. Secrets only ever come from the environment, through ``dg.EnvVar``: the code
location loads without them, the UI shows which variable a resource reads and never its value, and
only a run that needs a missing one fails.
"""

import os

import dagster as dg

from redwall.assets.resources import PseudonymKey, RedwallHome
from redwall.privacy import KEY_ENV


def environment() -> str:
    env = os.environ.get("REDWALL_ENV", "local")
    if env not in ("local", "production"):
        raise ValueError(f"REDWALL_ENV must be 'local' or 'production', not {env!r}")
    return env


def pseudonym_key_resource() -> PseudonymKey:
    """The key from ``REDWALL_PSEUDONYM_KEY`` through ``dg.EnvVar``. Dagster fails the config of a
    run that needs an ``EnvVar`` which is not set, before any step: in production that is the
    rule, a missing key stops the publishing run and nothing else. A local home may publish
    without one (the demo key's rule), so there the variable is bound only when it is set."""
    if environment() == "production" or KEY_ENV in os.environ:
        return PseudonymKey(secret=dg.EnvVar(KEY_ENV))
    return PseudonymKey()


def resources_for_environment() -> dict[str, object]:
    lake_uri = os.environ.get("REDWALL_LAKE_URI") if environment() == "production" else None
    return {"redwall": RedwallHome(lake_uri=lake_uri), "pseudonym_key": pseudonym_key_resource()}
