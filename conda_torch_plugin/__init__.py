"""conda torch-env: a working, reproducible GPU PyTorch environment in one command.

Kept empty on purpose: conda imports this package on every command (through
``plugin.py``), so nothing here may import anything heavy.
"""

__version__ = "0.1.0"
