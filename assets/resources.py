"""The resources assets ask for; which instance each gets, per environment, is chosen in
:mod:`redwall.pipelines.resources`."""

from pathlib import Path

import dagster as dg

from redwall.home import Home


class RedwallHome(dg.ConfigurableResource):
    """The data home every asset reads and writes."""

    root: str | None = None
    lake_uri: str | None = None

    def home(self) -> Home:
        base = Home.from_env() if self.root is None else Home.at(Path(self.root))
        if self.lake_uri:
            base = Home(root=base.root, lake_uri=self.lake_uri.rstrip("/"))
        return base.ensure()


class PseudonymKey(dg.ConfigurableResource):
    """The secret that keys the shared warehouse's pseudonyms (:mod:`redwall.privacy`); only the
    warehouse asset asks for it. None: no secret, so only a home whose every file ``redwall demo``
    generated may publish (with the public demo key); any other says to set ``REDWALL_PSEUDONYM_KEY``."""

    secret: str | None = None
