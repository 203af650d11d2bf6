"""The instruction-counting reference interpreter (refinterp), shipped so that
witnesses (bpflint/witness) can be executed and counted outside the tests."""
