"""Stage 6: scores of trained runs on clean and noisy tests, statistics, pooled cross-validation scores, baselines."""
