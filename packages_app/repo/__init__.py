"""The Universe repository Cosmos reads: ``GET /repo`` (and HEAD), and each cluster's ``/clusters/<name>/repo``.

What a cluster gets depends on its DC/OS version (``User-Agent: cosmos/<x> dcos/<X.Y>``) and on the
repository versions its ``Accept`` lists, exactly as the Universe generator (``scripts/gen_universe.py``)
rendered ``repo-up-to-<X.Y>.json``:

- packages whose ``minDcosReleaseVersion`` (missing: 0.0) is above the cluster's are left out;
- DC/OS up to 1.9 gets a v3 repository, 1.10 and 1.11 v4, 1.12 and later v5 (no DC/OS version: v5);
- in a v3 repository 4.0 packages become 3.0, without ``upgradesFrom``/``downgradesTo``;
- below DC/OS 1.10, double quotes in config descriptions and string defaults are escaped once more
  (Cosmos before 1.10 unescaped them once too often when rendering).

Each package is its stored metadata plus our ``releaseVersion`` (its rank in the default version's order,
so that Cosmos installs the registry's default version; see ``render``), with every URL and image the
version stored pointing at this registry. ``selected`` is left out: it is the repository's to set and we
select nothing (Cosmos reads a missing ``selected`` as false).

One module per concern: ``negotiation`` (Accept, Accept-Encoding), ``dcos_rules``
(what each DC/OS version gets), ``render`` (the repository JSON), ``cache`` (rendered variants per
catalogue generation), ``views`` and ``urls``.
"""
