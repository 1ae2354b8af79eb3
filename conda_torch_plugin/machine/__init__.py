"""This machine as a value (``model``), how it is found out (``detect``), and whether it can
run a given PyTorch build (``check``)."""
