"""Frozen feature networks a run loads or trains first (the conv
classifier: feature encoder and evaluation classifier).
"""
