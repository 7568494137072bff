"""The training loop and everything a run keeps: `runner` (the one loop),
`prerequisites` (teachers, encoders, evaluation classifiers), checkpoints,
guards, preemption, the workdir and its reporting.
"""
