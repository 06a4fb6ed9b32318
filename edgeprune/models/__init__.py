"""Reference multi-task architectures. Every model's ``forward(x)`` returns ``dict[str, Tensor]``."""
