"""Devices: the mesh, the sharding rules of state and batches, and the
host-local / global conversions of multi-process runs.
"""
