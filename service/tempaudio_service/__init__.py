"""tempaudio data plane: the synthesis service and the cleanup program."""

__version__ = "0.1.0"
