"""Looking after an installation: what ``kagglekit doctor`` checks and what ``kagglekit cache`` shows and prunes."""
