"""The shared config sections, their composition with the registered
modules' own sections, parsing of config files and flags, and the
start-up checks.
"""
