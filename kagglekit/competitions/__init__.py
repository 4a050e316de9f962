"""Competitions: the typed contract per task, discovery by name, the generic YAML kinds, offline builders."""
