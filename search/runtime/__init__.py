"""The torch half of the search engine: data, the training loop and its steps, evaluation,
checkpoints, executors and the entry points that wire them to the torch-free driver."""
