"""Loading trial data, checkpoints, prediction, training, evaluation, predictions files."""
