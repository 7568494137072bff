"""Data sources: toys and mixtures through `datasets`, point-cloud files,
image files (`images`, one `SOURCES` line per format), the
train / validation / held-out splits and the batch streams keyed by
(seed, step).
"""
