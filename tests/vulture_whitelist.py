"""What vulture (tests/test_house.py) may not call dead, each with its reason.

vulture reads names, not types: it cannot see that torch calls ``forward``, that a protocol's
parameters must be there, or that a public function exists for library users and tests.
"""

# torch.nn.Module.forward and torch.autograd.Function.forward: called by torch through __call__/apply.
forward  # noqa
# Interfaces whose parameters are fixed by their callers: a context manager's __exit__, a scheduler's
# step(metric), a signal handler's (signum, frame).
exc  # noqa
metric  # noqa
signum  # noqa
frame  # noqa
# Attributes that third-party objects read: numpy's ndarray.flags.writeable, onnx's ModelProto.doc_string.
writeable  # noqa
doc_string  # noqa
# A typing Protocol: it documents what FusedScan asks of a cell kind's kernel; nothing instantiates it.
Kernel  # noqa
# Public API beyond the package's own calls (tests/test_ngram.py, tests/test_regularizers.py use them):
# the next-id distribution after any context, and the inverse of plain_state_dict.
distribution  # noqa
wrapped_state_dict  # noqa
