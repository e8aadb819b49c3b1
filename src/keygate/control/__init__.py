"""The control plane: /connections and /apps."""
