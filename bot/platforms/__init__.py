"""One Publisher per network, behind the small interface in `base.py`."""
