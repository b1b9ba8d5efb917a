"""The shipped YAML catalogues, importable as package data (hubensemble.catalogues)."""
