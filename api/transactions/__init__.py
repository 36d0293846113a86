"""The transaction pipeline: signed envelopes in, domain change + ledger entry + receipt out."""
