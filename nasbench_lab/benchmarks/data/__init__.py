"""Tabular ground truth shipped with the package: data files only (a package so setuptools ships it as one)."""
