"""Build hook: compiles the optional native decoders (Cython) when a compiler is present."""

from setuptools import setup

setup()
