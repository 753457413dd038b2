"""Person resolution: which person each record of every source names, one module per reason to
change.

- :mod:`~redwall.marts.resolution.records`: record extraction, every record naming a person in one
  shape, with the identity its document gives and the place its address gives;
- :mod:`~redwall.marts.resolution.model`: the Splink model that scores pairs of records without a
  usable ID (``person_model.json``: comparisons, blocking rules, trained m/u probabilities and the
  match threshold);
- :mod:`~redwall.marts.resolution.clustering`: the graph steps, linking scored records into
  clusters and clusters to persons, never two persons one visit lists into one;
- :mod:`~redwall.marts.resolution.linkage`: exact linkage by document, the model's linkage of the
  rest, and the incremental resolution across builds;
- :mod:`~redwall.marts.resolution.survivorship`: which record's value a person keeps for each
  attribute;
- :mod:`~redwall.marts.resolution.evaluate`: pairwise precision and recall on the generator's
  ground truth (``redwall evaluate``), and the model's training (``redwall regenerate model``).

The person marts built from it are :mod:`redwall.marts.person`.
"""
