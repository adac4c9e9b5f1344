"""Installed versions of packages, for the workers in other environments (standard library only).

The conversion workers import it as a sibling file: they run without onnxpipe installed. The
versions they report are part of the convert stage's key, so a rebuilt environment reconverts.
"""

import importlib.metadata as md


def package_versions(names):
    """``{name: version}`` for each distribution name; ``None`` for one that is not installed."""
    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out
