"""Run directories and what they record: results, provenance, plots, and the score ledger."""
