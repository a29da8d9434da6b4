"""Lifetime-value models (BG/NBD, MBG/NBD, Gamma-Gamma, discounted CLV): pure numpy/scipy, no database code."""
