"""Great Expectations suites for segmint, defined as code: one module per landing source."""
