"""Storage: the contract (interface.py) and its backends."""
