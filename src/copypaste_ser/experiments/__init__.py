"""Stage 7: the experiment grid, nested selection, cross-validation runs, ensembles, fusion and reports."""
