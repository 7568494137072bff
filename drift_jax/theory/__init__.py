"""The mathematics the methods and fields rest on: exact Gaussian mixtures
and toys, smoothed scores and their estimators, EDM noise levels, the
shared losses, exact population fields, statistics over seeds, and the
argument checks of the public maths functions.
"""
