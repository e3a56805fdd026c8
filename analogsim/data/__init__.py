"""Data sets for learning-rule studies: real image sets from local files, generated sets.

    >>> from analogsim import data
    >>> train = data.load("fashion-mnist", "train")       # x (60000, 784) in [0, 1]
    >>> test = data.load("robot-dynamics", "test", n_train=5000, n_test=500)
    >>> print(data.check("mnist"))                        # where it is, or how to get it

Nothing is downloaded implicitly; ``download`` exists for machines with internet access.
See docs/data.md for every set, its origin, licence and how to obtain it.
"""

from analogsim.data.dataset import Dataset
from analogsim.data.fetch import download
from analogsim.data.registry import available, check, load, names

__all__ = ["Dataset", "available", "check", "download", "load", "names"]
