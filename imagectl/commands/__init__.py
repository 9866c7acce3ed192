"""One module per command: each computes a plan or a result (typed dataclasses) and knows nothing of click."""
