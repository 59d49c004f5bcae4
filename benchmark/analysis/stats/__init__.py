"""Statistics comparing humans and models on the same trials.

Each module holds one family and works DataFrame in, DataFrame out on the tidy trials table of
`bodyscene.benchmark.analysis.observations`: accuracy with hierarchical bootstrap intervals, the mixed-effects
regression, planned contrasts, error consistency, human-likeness, conflict shares and power."""
