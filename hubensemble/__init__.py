"""hubensemble: rank pre-trained image modules by kNN, fine-tune the best, ship their ensemble."""

__version__ = "0.1.0"
