"""What conda-lock itself computes, as the reference our own output must equal."""

from __future__ import annotations


def conda_lock_dependencies(depends: list[str]) -> dict[str, str]:
    """What conda-lock's conda solver stores for a record's depends (conda_solver.py):
    one entry per name, the specs of a name merged, the version part only."""
    from conda_lock._vendor.conda.models.match_spec import MatchSpec

    specs: dict[str, list] = {}
    for dep in depends:
        ms = MatchSpec(dep)
        specs.setdefault(ms.name, []).append(ms)
    result = {}
    for name, matchspecs in specs.items():
        merged = matchspecs[0] if len(matchspecs) == 1 else MatchSpec.merge(matchspecs)[0]
        result[name] = merged.version.spec_str if merged.version is not None else ""
    return result
